// The writes that move traffic on a canary Ingress, and how it is read: the fenced raise (one
// JSON Patch whose test ops check the rollout id, the holder's fence token and the stop marker)
// and the stop (0% with the marker, header/cookie routing removed; a stale patch re-read and
// rebuilt). The IngressRouter (ingress-router.ts) decides when; this file says exactly what.

import { type NetworkingV1Api, type PatchStrategy, setHeaderOptions, type V1Ingress } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import { redact } from '../secrets.js';
import { StopRequestedError, type TrafficState } from '../rollout/ports.js';
import { isNotFound, statusCode, withKubeRetry } from './api-errors.js';
import { FENCE_ANNOTATION, isOwnedBy, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ROLLOUT_ID_ANNOTATION, STOP_ANNOTATION } from './labels.js';
import type { RetryPolicy } from '../retry.js';

export const CANARY_ANNOTATION = 'nginx.ingress.kubernetes.io/canary';
export const WEIGHT_ANNOTATION = 'nginx.ingress.kubernetes.io/canary-weight';
export const BY_HEADER_ANNOTATION = 'nginx.ingress.kubernetes.io/canary-by-header';
export const BY_HEADER_VALUE_ANNOTATION = 'nginx.ingress.kubernetes.io/canary-by-header-value';
export const BY_HEADER_PATTERN_ANNOTATION = 'nginx.ingress.kubernetes.io/canary-by-header-pattern';
export const BY_COOKIE_ANNOTATION = 'nginx.ingress.kubernetes.io/canary-by-cookie';
/**
 * ingress-nginx evaluates these before canary-weight (header, then cookie, then weight): a request
 * carrying the header or cookie reaches the canary even at weight 0. So "0%" only means no canary
 * traffic once they are gone, and every stop path removes them in the same patch as the weight.
 */
export const ROUTING_OVERRIDE_ANNOTATIONS = [BY_HEADER_ANNOTATION, BY_HEADER_VALUE_ANNOTATION, BY_HEADER_PATTERN_ANNOTATION, BY_COOKIE_ANNOTATION] as const;
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';

/** Optimistic-concurrency retries of one weight change before giving up. */
export const CONFLICT_ATTEMPTS = 5;



export function parseWeight(ing: V1Ingress): number | null {
  const raw = ing.metadata?.annotations?.[WEIGHT_ANNOTATION];
  if (raw === undefined) return null;
  const n = Number(raw);
  return Number.isFinite(n) && raw.trim() !== '' ? n : null;
}


export function checkWeight(weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
    throw new CanaryError('invalid-input', `canary weight must be a whole number from 0 to 100, got ${weight}`);
  }
}

/** JSON Pointer to an annotation: `/` in the key is `~1` (and `~` is `~0`), per RFC 6901. */
export function annotationPointer(key: string): string {
  return `/metadata/annotations/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

export type JsonPatchOp =
  | { op: 'test' | 'add' | 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

export const JSON_PATCH = 'application/json-patch+json' as unknown as PatchStrategy;

export function statusOf(err: unknown): number | undefined {
  return statusCode(err) ?? (err instanceof Error ? statusCode(err.cause) : undefined);
}

/**
 * Why a raise must not land on this Ingress, or null when it may: another rollout prepared it,
 * or a stop was written on it.
 */
export function fenceFailure(ing: V1Ingress, rolloutId: string, token?: string): string | null {
  const ann = ing.metadata?.annotations ?? {};
  const id = ann[ROLLOUT_ID_ANNOTATION];
  if (id !== undefined && id !== rolloutId) return `it now belongs to rollout ${id}`;
  const holder = ann[FENCE_ANNOTATION];
  if (token !== undefined && holder !== undefined && holder !== '' && holder !== token) return `it now belongs to ${holder} (the process driving rollout ${rolloutId} now)`;
  const stop = ann[STOP_ANNOTATION];
  if (stop) return stop;
  return null;
}

/**
 * The one write a rollout makes to move its own traffic: a JSON Patch whose `test` ops check, on
 * the object that carries the traffic, that the route is still this rollout's and that no stop
 * was written since we read it; the weight changes only if both still hold (else 422, unwritten).
 * At 0 the same patch removes header and cookie routing, which ingress-nginx honours ahead of
 * the weight.
 */
export async function fencedWeight(
  api: NetworkingV1Api,
  namespace: string,
  name: string,
  weight: number,
  rolloutId: string,
  owned: (ing: V1Ingress) => boolean,
  retry: RetryPolicy & { server: string },
  token?: string,
  /** Smoke-test header routing, added with the first raise: at 0% the canary may have no pods. */
  headerRouting?: { header: string; value?: string },
  /** Keep (or add) header routing at 0%: the smoke phase, once the canary's pods are available. */
  headerAtZero = false,
): Promise<void> {
  checkWeight(weight);
  const ref = `${namespace}/${name}`;
  for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt += 1) {
    let current: V1Ingress;
    try {
      current = await withKubeRetry(`reading Ingress ${ref}`, (o) => api.readNamespacedIngress({ name, namespace }, o), retry);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // No canary route means no canary traffic: 0% already holds.
      if (weight === 0) return;
      throw new CanaryError('unexpected', `the canary Ingress ${ref} no longer exists, so the canary cannot get ${weight}% of traffic; it was deleted outside this rollout`);
    }
    if (!owned(current)) {
      throw new CanaryError('invalid-input', `Ingress ${ref} is not managed by canary-cli (label ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE} missing); refusing to change its weight`);
    }
    const fenced = fenceFailure(current, rolloutId, token);
    if (fenced) throw new StopRequestedError(ref, fenced);
    const present = current.metadata?.annotations ?? {};
    const wantedHeaders: Record<string, string> =
      (weight > 0 || headerAtZero) && headerRouting
        ? { [BY_HEADER_ANNOTATION]: headerRouting.header, ...(headerRouting.value !== undefined && { [BY_HEADER_VALUE_ANNOTATION]: headerRouting.value }) }
        : {};
    const overrides = weight === 0 ? ROUTING_OVERRIDE_ANNOTATIONS.filter((a) => present[a] !== undefined && wantedHeaders[a] === undefined) : [];
    const headerOps = Object.entries(wantedHeaders).filter(([a, v]) => present[a] !== v);
    if (present[WEIGHT_ANNOTATION] === String(weight) && overrides.length === 0 && headerOps.length === 0) return;
    const ops: JsonPatchOp[] = [];
    const legacy = present[ROLLOUT_ID_ANNOTATION] === undefined || present[STOP_ANNOTATION] === undefined;
    // A route prepared before the fence existed: pin the whole object instead, and add the marks.
    if (legacy) ops.push({ op: 'test', path: '/metadata/resourceVersion', value: current.metadata?.resourceVersion ?? '' });
    if (present[ROLLOUT_ID_ANNOTATION] === undefined) ops.push({ op: 'add', path: annotationPointer(ROLLOUT_ID_ANNOTATION), value: rolloutId });
    else ops.push({ op: 'test', path: annotationPointer(ROLLOUT_ID_ANNOTATION), value: rolloutId });
    if (present[STOP_ANNOTATION] === undefined) ops.push({ op: 'add', path: annotationPointer(STOP_ANNOTATION), value: '' });
    else ops.push({ op: 'test', path: annotationPointer(STOP_ANNOTATION), value: '' });
    if (token !== undefined) {
      if (present[FENCE_ANNOTATION] === undefined || present[FENCE_ANNOTATION] === '') ops.push({ op: 'add', path: annotationPointer(FENCE_ANNOTATION), value: token });
      else ops.push({ op: 'test', path: annotationPointer(FENCE_ANNOTATION), value: token });
    }
    ops.push({ op: 'add', path: annotationPointer(WEIGHT_ANNOTATION), value: String(weight) });
    for (const a of overrides) ops.push({ op: 'remove', path: annotationPointer(a) });
    for (const [a, v] of headerOps) ops.push({ op: 'add', path: annotationPointer(a), value: v });
    try {
      await withKubeRetry(
        `setting the canary weight of Ingress ${ref} to ${weight}%`,
        (o) => api.patchNamespacedIngress({ name, namespace, body: ops }, setHeaderOptions('Content-Type', JSON_PATCH, o)),
        retry,
      );
      return;
    } catch (err) {
      if (statusOf(err) !== 422) throw err;
      // A test op failed: read again to learn whether a stop landed (or, on a legacy route, any write).
    }
  }
  throw new CanaryError(
    'unexpected',
    `Ingress ${ref} changed under every one of ${CONFLICT_ATTEMPTS} attempts to set its canary weight to ${weight}%; something else keeps writing it`,
  );
}

/**
 * Weight 0 with the stop marker, header/cookie routing removed: one JSON Patch that tests nothing
 * we care to keep (so it lands whatever a deploy wrote before it, and every raise prepared before
 * it fails its test). Its `remove` ops name the annotations we read; when another stop removed
 * them first the API answers 422, so the Ingress is read again and the patch rebuilt, and a read
 * that shows the stop already done ends it. Resolves to the Ingress as this stop found it: the
 * one our patch was built from, or the re-read one when someone else had done the work.
 */
async function stopPatch(
  api: NetworkingV1Api,
  namespace: string,
  found: V1Ingress,
  marker: string,
  retry: RetryPolicy & { server: string },
): Promise<V1Ingress> {
  const name = found.metadata?.name ?? '';
  let ing = found;
  for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt += 1) {
    if (!needsStop(ing)) return ing;
    try {
      await withKubeRetry(
        `setting the canary weight of Ingress ${namespace}/${name} to 0%`,
        (o) => api.patchNamespacedIngress({ name, namespace, body: stopOps(ing, marker) }, setHeaderOptions('Content-Type', JSON_PATCH, o)),
        retry,
      );
      return ing;
    } catch (err) {
      // Deleted since the list: no route, no canary traffic.
      if (isNotFound(err)) return ing;
      if (statusOf(err) !== 422) throw err;
    }
    // Stale: what we read changed under us (another stop removed the header routing first).
    try {
      ing = await withKubeRetry(`reading Ingress ${namespace}/${name}`, (o) => api.readNamespacedIngress({ name, namespace }, o), retry);
    } catch (err) {
      if (isNotFound(err)) return { ...ing, metadata: { ...ing.metadata, annotations: { [STOP_ANNOTATION]: marker, [WEIGHT_ANNOTATION]: '0' } } };
      throw err;
    }
  }
  throw new CanaryError('unexpected', `Ingress ${namespace}/${name} changed under every one of ${CONFLICT_ATTEMPTS} attempts to set its canary weight to 0%; something else keeps writing it`);
}

/** The 0% patch for an Ingress as read. */
function stopOps(ing: V1Ingress, marker: string): JsonPatchOp[] {
  const present = ing.metadata?.annotations;
  if (!present) return [{ op: 'add', path: '/metadata/annotations', value: { [STOP_ANNOTATION]: marker, [WEIGHT_ANNOTATION]: '0' } }];
  const ops: JsonPatchOp[] = [];
  // The first stop's marker is kept: it says who stopped the rollout.
  if (!present[STOP_ANNOTATION]) ops.push({ op: 'add', path: annotationPointer(STOP_ANNOTATION), value: marker });
  ops.push({ op: 'add', path: annotationPointer(WEIGHT_ANNOTATION), value: '0' });
  for (const a of ROUTING_OVERRIDE_ANNOTATIONS) if (present[a] !== undefined) ops.push({ op: 'remove', path: annotationPointer(a) });
  return ops;
}

function needsStop(ing: V1Ingress): boolean {
  const ann = ing.metadata?.annotations ?? {};
  return (parseWeight(ing) ?? 0) !== 0 || ROUTING_OVERRIDE_ANNOTATIONS.some((a) => ann[a] !== undefined) || !ann[STOP_ANNOTATION];
}

/**
 * Every canary Ingress of ours to 0 with the stop marker; all are tried, the first failure is
 * thrown after. Resolves to each Ingress as this stop found it (see stopPatch).
 */
export async function stopAll(api: NetworkingV1Api, namespace: string, owned: readonly V1Ingress[], unredacted: string, retry: RetryPolicy & { server: string }): Promise<V1Ingress[]> {
  // The stop annotation may quote a reason: it goes through the redaction boundary like every writer.
  const marker = redact(unredacted);
  let failure: unknown;
  const safe: string[] = [];
  const found: V1Ingress[] = [];
  for (const ing of owned) {
    try {
      found.push(await stopPatch(api, namespace, ing, marker, retry));
      safe.push(ing.metadata?.name ?? '');
    } catch (err) {
      found.push(ing);
      failure ??= err;
    }
  }
  if (failure === undefined) return found;
  const note = safe.length ? ` (${safe.join(', ')} at 0%)` : '';
  if (failure instanceof CanaryError) throw new CanaryError(failure.kind, `${failure.message}${note}`, failure.details, { cause: failure });
  throw failure;
}

function routesTo(ing: V1Ingress, service: string): boolean {
  const backends = (ing.spec?.rules ?? []).flatMap((r) => r.http?.paths ?? []).map((p) => p.backend.service?.name);
  return backends.includes(service) || ing.spec?.defaultBackend?.service?.name === service;
}

function overridesOf(ing: V1Ingress): string[] {
  return ROUTING_OVERRIDE_ANNOTATIONS.filter((a) => ing.metadata?.annotations?.[a] !== undefined);
}

/** Ours (by label) and others' canary Ingresses that send traffic to the canary Service, sorted by name. */
export function trafficStateOf(items: readonly V1Ingress[], target: string, canaryService: string): TrafficState {
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  const ours = items
    .filter((ing) => ing.metadata?.name && isOwnedBy(ing.metadata.labels, target))
    .map((ing) => ({
      name: ing.metadata?.name ?? '',
      weight: parseWeight(ing),
      overrides: overridesOf(ing),
      stoppedBy: ing.metadata?.annotations?.[STOP_ANNOTATION] || null,
      rolloutId: ing.metadata?.annotations?.[ROLLOUT_ID_ANNOTATION] ?? null,
    }))
    .sort(byName);
  const foreign = items
    .filter((ing) => ing.metadata?.name && !isOwnedBy(ing.metadata.labels, target))
    .filter((ing) => ing.metadata?.annotations?.[CANARY_ANNOTATION] === 'true' && routesTo(ing, canaryService))
    .map((ing) => ({ name: ing.metadata?.name ?? '', weight: parseWeight(ing), overrides: overridesOf(ing) }))
    .sort(byName);
  return { ours, foreign };
}
