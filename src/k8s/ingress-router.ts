// The ingress-nginx traffic router: a second Ingress, ours, carrying the stable Ingress's routes
// to the canary Service, and a weight annotation that is the only thing later changed.
// The stable Ingress and any Ingress we did not create are read, never written.

import {
  NetworkingV1Api,
  type PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1HTTPIngressPath,
  type V1Ingress,
  type V1IngressRule,
} from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import type { TargetNames } from '../policy/policy.js';
import { StopRequestedError, type CallBudget, type OwnRouteState, type TrafficRouter, type TrafficState } from '../rollout/ports.js';
import { isConflict, isNotFound, statusCode, withKubeRetry, type RetryOptions } from './api-errors.js';
import { serverOf } from './connection.js';
import { FENCE_ANNOTATION, isOwnedBy, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ownershipLabels, ownershipSelector, ROLLOUT_ID_ANNOTATION, STOP_ANNOTATION } from './labels.js';

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
const CONFLICT_ATTEMPTS = 5;

/**
 * Smoke tests reach the canary with a header whatever its weight (canary-by-header), e.g.
 * `X-Canary: always`. Set when the canary Ingress is prepared; removed by setWeight(0).
 */
export interface HeaderRouting {
  header: string;
  value?: string;
}

export interface IngressRouterOptions {
  kc: KubeConfig;
  namespace: string;
  names: TargetNames;
  rolloutId: string;
  target: string;
  headerRouting?: HeaderRouting;
  retry?: RetryOptions;
  /**
   * This process's fence token (lease holder identity and epoch): written when the route is
   * prepared or claimed, tested by every raise, so a predecessor that a `--resume` replaced
   * (same rollout id) loses its writes. Without it only the rollout id is fenced.
   */
  fenceToken?: string;
}

function parseWeight(ing: V1Ingress): number | null {
  const raw = ing.metadata?.annotations?.[WEIGHT_ANNOTATION];
  if (raw === undefined) return null;
  const n = Number(raw);
  return Number.isFinite(n) && raw.trim() !== '' ? n : null;
}

function routeKeys(rules: readonly V1IngressRule[] | undefined): Set<string> {
  const keys = new Set<string>();
  for (const rule of rules ?? []) {
    for (const p of rule.http?.paths ?? []) keys.add(`${rule.host ?? '*'}${p.path ?? '/'}`);
  }
  return keys;
}

function checkWeight(weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
    throw new CanaryError('invalid-input', `canary weight must be a whole number from 0 to 100, got ${weight}`);
  }
}

/** JSON Pointer to an annotation: `/` in the key is `~1` (and `~` is `~0`), per RFC 6901. */
export function annotationPointer(key: string): string {
  return `/metadata/annotations/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

type JsonPatchOp =
  | { op: 'test' | 'add' | 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

const JSON_PATCH = 'application/json-patch+json' as unknown as PatchStrategy;

function statusOf(err: unknown): number | undefined {
  return statusCode(err) ?? (err instanceof Error ? statusCode(err.cause) : undefined);
}

/**
 * Why a raise must not land on this Ingress, or null when it may: another rollout prepared it,
 * or a stop was written on it.
 */
function fenceFailure(ing: V1Ingress, rolloutId: string, token?: string): string | null {
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
async function fencedWeight(
  api: NetworkingV1Api,
  namespace: string,
  name: string,
  weight: number,
  rolloutId: string,
  owned: (ing: V1Ingress) => boolean,
  retry: RetryOptions & { server: string },
  token?: string,
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
    const overrides = weight === 0 ? ROUTING_OVERRIDE_ANNOTATIONS.filter((a) => present[a] !== undefined) : [];
    if (present[WEIGHT_ANNOTATION] === String(weight) && overrides.length === 0) return;
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
  retry: RetryOptions & { server: string },
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
async function stopAll(api: NetworkingV1Api, namespace: string, owned: readonly V1Ingress[], marker: string, retry: RetryOptions & { server: string }): Promise<V1Ingress[]> {
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

export class IngressRouter implements TrafficRouter {
  private readonly api: NetworkingV1Api;
  private readonly retry: RetryOptions & { server: string };

  constructor(private readonly opts: IngressRouterOptions) {
    this.api = opts.kc.makeApiClient(NetworkingV1Api);
    this.retry = { ...opts.retry, server: serverOf(opts.kc) };
  }

  private get ref(): string {
    return `${this.opts.namespace}/${this.opts.names.canaryIngress}`;
  }

  private async readStable(): Promise<V1Ingress> {
    const { namespace, names } = this.opts;
    try {
      return await withKubeRetry(
        `reading the stable Ingress ${namespace}/${names.stableIngress}`,
        (o) => this.api.readNamespacedIngress({ name: names.stableIngress, namespace }, o),
        this.retry,
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
      throw new CanaryError('invalid-input', `the stable Ingress ${namespace}/${names.stableIngress} does not exist; name the right one in the policy's spec.target.stableIngress`);
    }
  }

  /** The stable Ingress's routes to the stable Service, pointed at the canary Service. */
  private canaryRules(stable: V1Ingress): V1IngressRule[] {
    const { names, namespace } = this.opts;
    const rules: V1IngressRule[] = [];
    for (const rule of stable.spec?.rules ?? []) {
      const paths: V1HTTPIngressPath[] = (rule.http?.paths ?? [])
        .filter((p) => p.backend.service?.name === names.stableService)
        .map((p) => ({
          ...(p.path !== undefined ? { path: p.path } : {}),
          pathType: p.pathType,
          backend: { service: { name: names.canaryService, ...(p.backend.service?.port ? { port: p.backend.service.port } : {}) } },
        }));
      if (paths.length > 0) rules.push({ ...(rule.host !== undefined ? { host: rule.host } : {}), http: { paths } });
    }
    if (rules.length === 0) {
      throw new CanaryError(
        'invalid-input',
        `the stable Ingress ${namespace}/${names.stableIngress} has no path whose backend is Service ${names.stableService}, so there is no route to split; check spec.target.stableService`,
      );
    }
    return rules;
  }

  private desired(stable: V1Ingress, existing: V1Ingress | undefined): V1Ingress {
    const { names, namespace, target, rolloutId, headerRouting } = this.opts;
    const annotations: Record<string, string> = { ...existing?.metadata?.annotations };
    for (const a of ROUTING_OVERRIDE_ANNOTATIONS) delete annotations[a];
    const legacyClass = stable.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
    if (legacyClass !== undefined) annotations[LEGACY_CLASS_ANNOTATION] = legacyClass;
    Object.assign(annotations, {
      [ROLLOUT_ID_ANNOTATION]: rolloutId,
      // A new rollout starts unstopped; a stop of this same rollout is refused before this point.
      [STOP_ANNOTATION]: '',
      [CANARY_ANNOTATION]: 'true',
      [WEIGHT_ANNOTATION]: '0',
    });
    if (this.opts.fenceToken !== undefined) annotations[FENCE_ANNOTATION] = this.opts.fenceToken;
    if (headerRouting) {
      annotations[BY_HEADER_ANNOTATION] = headerRouting.header;
      if (headerRouting.value !== undefined) annotations[BY_HEADER_VALUE_ANNOTATION] = headerRouting.value;
    }
    const spec = stable.spec;
    return {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: {
        name: names.canaryIngress,
        namespace,
        labels: { ...existing?.metadata?.labels, ...ownershipLabels(target) },
        annotations,
        ...(existing?.metadata?.resourceVersion ? { resourceVersion: existing.metadata.resourceVersion } : {}),
      },
      spec: {
        ...(spec?.ingressClassName !== undefined ? { ingressClassName: spec.ingressClassName } : {}),
        ...(spec?.tls !== undefined ? { tls: spec.tls } : {}),
        rules: this.canaryRules(stable),
      },
    };
  }

  /** Refuses (before any write) when another canary Ingress already serves one of our routes. */
  private async checkForeignCanaries(rules: readonly V1IngressRule[]): Promise<void> {
    const { namespace, names } = this.opts;
    const list = await withKubeRetry(`listing Ingresses in namespace ${namespace}`, (o) => this.api.listNamespacedIngress({ namespace }, o), this.retry);
    const ours = routeKeys(rules);
    for (const other of list.items) {
      const name = other.metadata?.name ?? '';
      if (name === names.canaryIngress || name === names.stableIngress) continue;
      if (other.metadata?.annotations?.[CANARY_ANNOTATION] !== 'true') continue;
      const shared = [...routeKeys(other.spec?.rules)].filter((k) => ours.has(k));
      if (shared.length > 0) {
        throw new CanaryError(
          'invalid-input',
          `canary Ingress ${namespace}/${name} already serves ${shared.join(', ')}; ingress-nginx honours only one canary per host and path. Finish or remove that canary first; nothing was changed`,
        );
      }
    }
  }

  /** The stable Ingress and our canary Ingress (if any); refuses when that name is taken by an Ingress we do not own. */
  private async inspectObjects(): Promise<{ stable: V1Ingress; existing: V1Ingress | undefined }> {
    const { namespace, names, target } = this.opts;
    const stable = await this.readStable();
    let existing: V1Ingress | undefined;
    try {
      existing = await withKubeRetry(`reading Ingress ${this.ref}`, (o) => this.api.readNamespacedIngress({ name: names.canaryIngress, namespace }, o), this.retry);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (existing && !isOwnedBy(existing.metadata?.labels, target)) {
      throw new CanaryError(
        'invalid-input',
        `Ingress ${this.ref} already exists and was not created by canary-cli for ${target} (no label ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}); rename the canary Ingress with spec.target.canaryIngress or remove that Ingress; nothing was changed`,
      );
    }
    return { stable, existing };
  }

  /**
   * Read-only: everything prepare() would refuse (no route to split, the name taken by an Ingress
   * we do not own, another canary on our host and path), so a deploy can refuse before its first write.
   */
  async verify(): Promise<void> {
    const { stable } = await this.inspectObjects();
    await this.checkForeignCanaries(this.canaryRules(stable));
  }

  async prepare(): Promise<void> {
    const { namespace, names } = this.opts;
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt += 1) {
      const { stable, existing } = await this.inspectObjects();
      const stoppedBy = existing?.metadata?.annotations?.[STOP_ANNOTATION];
      if (existing && stoppedBy && existing.metadata?.annotations?.[ROLLOUT_ID_ANNOTATION] === this.opts.rolloutId) {
        throw new StopRequestedError(this.ref, stoppedBy);
      }
      const body = this.desired(stable, existing);
      await this.checkForeignCanaries(body.spec?.rules ?? []);
      try {
        if (existing) {
          await withKubeRetry(`updating the canary Ingress ${this.ref}`, (o) => this.api.replaceNamespacedIngress({ name: names.canaryIngress, namespace, body }, o), this.retry);
        } else {
          await withKubeRetry(`creating the canary Ingress ${this.ref}`, (o) => this.api.createNamespacedIngress({ namespace, body }, o), this.retry);
        }
        return;
      } catch (err) {
        // Someone created or changed it between our read and write: look again.
        if (!isConflict(err)) throw err;
      }
    }
    throw new CanaryError('unexpected', `the canary Ingress ${this.ref} kept changing while it was being prepared; something else is writing it`);
  }

  async setWeight(weight: number): Promise<void> {
    const { namespace, names, target, rolloutId } = this.opts;
    await fencedWeight(this.api, namespace, names.canaryIngress, weight, rolloutId, (ing) => isOwnedBy(ing.metadata?.labels, target), this.retry, this.opts.fenceToken);
  }

  /** The fence a write to stable is tied to: our route still ours, no stop written on it. */
  async checkFence(): Promise<void> {
    const { namespace, names } = this.opts;
    let ing: V1Ingress;
    try {
      ing = await withKubeRetry(`reading Ingress ${this.ref}`, (o) => this.api.readNamespacedIngress({ name: names.canaryIngress, namespace }, o), this.retry);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      throw new StopRequestedError(this.ref, 'the canary Ingress was deleted');
    }
    const fenced = fenceFailure(ing, this.opts.rolloutId, this.opts.fenceToken);
    if (fenced) throw new StopRequestedError(this.ref, fenced);
  }

  /**
   * A `--resume` takes the route over from the process it replaces: its fence token is written
   * (conditional on the rollout id and on the object as read), so from here on the predecessor's
   * raises fail their test op. Refused like a raise when the route is another rollout's.
   */
  async claim(): Promise<void> {
    const token = this.opts.fenceToken;
    if (token === undefined) return;
    const { namespace, names, rolloutId } = this.opts;
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt += 1) {
      let ing: V1Ingress;
      try {
        ing = await withKubeRetry(`reading Ingress ${this.ref}`, (o) => this.api.readNamespacedIngress({ name: names.canaryIngress, namespace }, o), this.retry);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        throw new StopRequestedError(this.ref, 'the canary Ingress was deleted');
      }
      const id = ing.metadata?.annotations?.[ROLLOUT_ID_ANNOTATION];
      if (id !== undefined && id !== rolloutId) throw new StopRequestedError(this.ref, `it now belongs to rollout ${id}`);
      if (ing.metadata?.annotations?.[FENCE_ANNOTATION] === token) return;
      const ops: JsonPatchOp[] = [
        { op: 'test', path: '/metadata/resourceVersion', value: ing.metadata?.resourceVersion ?? '' },
        ...(ing.metadata?.annotations ? [] : [{ op: 'add' as const, path: '/metadata/annotations', value: {} }]),
        { op: 'add', path: annotationPointer(FENCE_ANNOTATION), value: token },
      ];
      try {
        await withKubeRetry(`claiming Ingress ${this.ref} for ${token}`, (o) => this.api.patchNamespacedIngress({ name: names.canaryIngress, namespace, body: ops }, setHeaderOptions('Content-Type', JSON_PATCH, o)), this.retry);
        return;
      } catch (err) {
        if (statusOf(err) !== 422) throw err;
      }
    }
    throw new CanaryError('unexpected', `the canary Ingress ${this.ref} kept changing while this deploy claimed it`);
  }

  /** On the stop path one call is one attempt, bounded by the time the stop has left. */
  private retryFor(budget?: CallBudget): RetryOptions & { server: string } {
    if (!budget) return this.retry;
    const ms = Math.max(1, Math.min(this.retry.timeoutMs ?? 30_000, budget.timeoutMs));
    return { ...this.retry, attempts: 1, timeoutMs: ms, deadlineMs: ms };
  }

  async stop(marker: string, budget?: CallBudget): Promise<OwnRouteState[]> {
    const { namespace, target } = this.opts;
    const retry = this.retryFor(budget);
    const list = await withKubeRetry(
      `looking for the canary Ingresses of ${target} in namespace ${namespace}`,
      (o) => this.api.listNamespacedIngress({ namespace, labelSelector: ownershipSelector(target) }, o),
      retry,
    );
    const owned = list.items.filter((ing) => ing.metadata?.name && isOwnedBy(ing.metadata.labels, target));
    const found = await stopAll(this.api, namespace, owned, marker, retry);
    return trafficStateOf(found, target, this.opts.names.canaryService).ours;
  }

  async inspect(budget?: CallBudget): Promise<TrafficState> {
    const { namespace, target, names } = this.opts;
    const list = await withKubeRetry(`listing Ingresses in namespace ${namespace}`, (o) => this.api.listNamespacedIngress({ namespace }, o), this.retryFor(budget));
    return trafficStateOf(list.items, target, names.canaryService);
  }

  async getWeight(): Promise<number | null> {
    const { namespace, names, target } = this.opts;
    try {
      const ing = await withKubeRetry(`reading Ingress ${this.ref}`, (o) => this.api.readNamespacedIngress({ name: names.canaryIngress, namespace }, o), this.retry);
      if (!isOwnedBy(ing.metadata?.labels, target)) return null;
      return parseWeight(ing) ?? 0;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }
}

export interface OwnedCanaryIngress {
  name: string;
  weight: number | null;
  /** Header/cookie routing annotations present: they send matching requests to the canary at any weight. */
  overrides: string[];
  /** The stop marker written on it (who stopped the rollout, and when); null when none. */
  stoppedBy: string | null;
}

/**
 * Every canary Ingress we made for a target, found by label, sorted by name: `canary rollback`
 * needs no record to find them, and a renamed canary Ingress (spec.target.canaryIngress changed
 * between rollouts) leaves more than one.
 */
export async function findOwnedCanaryIngresses(kc: KubeConfig, namespace: string, target: string, retry: RetryOptions = {}): Promise<OwnedCanaryIngress[]> {
  const api = kc.makeApiClient(NetworkingV1Api);
  const list = await withKubeRetry(
    `looking for the canary Ingresses of ${target} in namespace ${namespace}`,
    (o) => api.listNamespacedIngress({ namespace, labelSelector: ownershipSelector(target) }, o),
    { ...retry, server: serverOf(kc) },
  );
  return list.items
    .filter((ing) => ing.metadata?.name && isOwnedBy(ing.metadata.labels, target))
    .map((ing) => ({
      name: ing.metadata?.name ?? '',
      weight: parseWeight(ing),
      overrides: ROUTING_OVERRIDE_ANNOTATIONS.filter((a) => ing.metadata?.annotations?.[a] !== undefined),
      stoppedBy: ing.metadata?.annotations?.[STOP_ANNOTATION] || null,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The first of findOwnedCanaryIngresses, for callers that expect one; prefer the list. */
export async function findOwnedCanaryIngress(kc: KubeConfig, namespace: string, target: string, retry: RetryOptions = {}): Promise<OwnedCanaryIngress | null> {
  return (await findOwnedCanaryIngresses(kc, namespace, target, retry))[0] ?? null;
}
