// The Gateway API traffic router: the HTTPRoute rule that sends to the stable Service gets the
// canary Service as a second weighted backendRef (ours, marked by annotation), and every weight
// change is one fenced JSON Patch. The route's shape is checked by src/k8s/httproute-shape.ts;
// this file only reads, patches and retries. Nothing but our marks, our backendRef, the stable
// weight and our header-match rule is ever written.

import { CustomObjectsApi, type KubeConfig, type PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import type { TargetNames } from '../policy/policy.js';
import { StopRequestedError, type CallBudget, type OwnRouteState, type RouteState, type TrafficRouter, type TrafficState } from '../rollout/ports.js';
import { isNotFound, statusCode, withKubeRetry } from './api-errors.js';
import { serverOf } from './connection.js';
import {
  BACKEND_REF_ANNOTATION,
  claimPatch,
  fenceFailure,
  HEADER_RULE_ANNOTATION,
  HEADER_RULE_NAME,
  HTTPROUTE_GROUP,
  HTTPROUTE_VERSION,
  needsStop,
  parseRoute,
  preparePatch,
  STABLE_WEIGHT_ANNOTATION,
  stopPatch,
  weightPatch,
  type BackendRef,
  type HttpRoute,
  type JsonPatchOp,
  type RouteShape,
} from './httproute-shape.js';
import { headerRule, headerRoutingPatch } from './httproute-header-rule.js';
import { FENCE_ANNOTATION, ROLLOUT_ID_ANNOTATION, STOP_ANNOTATION, TARGET_LABEL } from './labels.js';
import type { RetryPolicy } from '../retry.js';

const PLURAL = 'httproutes';
/** Stale-patch (422) re-reads of one write before giving up. */
const CONFLICT_ATTEMPTS = 5;
const JSON_PATCH = 'application/json-patch+json' as unknown as PatchStrategy;

export interface GatewayRouterOptions {
  kc: KubeConfig;
  namespace: string;
  names: TargetNames;
  /** The HTTPRoute to split (spec.traffic.httpRoute; default the target's name). */
  httpRoute: string;
  rolloutId: string;
  target: string;
  headerRouting?: { header: string; value?: string };
  retry?: RetryPolicy;
  /**
   * This process's fence token (lease holder identity and epoch): written when the route is
   * prepared or claimed, tested by every raise, so a predecessor that a `--resume` replaced
   * (same rollout id) loses its writes. Without it only the rollout id is fenced.
   */
  fenceToken?: string;
}

type Retry = RetryPolicy & { server: string };

function statusOf(err: unknown): number | undefined {
  return statusCode(err) ?? (err instanceof Error ? statusCode(err.cause) : undefined);
}

function checkWeight(weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
    throw new CanaryError('invalid-input', `canary weight must be a whole number from 0 to 100, got ${weight}`);
  }
}

const isServiceRef = (b: BackendRef, name: string, namespace: string) =>
  (b.group === undefined || b.group === '' || b.group === 'core') && (b.kind ?? 'Service') === 'Service' && b.name === name && (b.namespace ?? namespace) === namespace;

/** Carries our marks for this target: the target label and one of our annotations. */
export function isOurRoute(route: HttpRoute, target: string): boolean {
  const ann = route.metadata?.annotations ?? {};
  return route.metadata?.labels?.[TARGET_LABEL] === target && (ann[ROLLOUT_ID_ANNOTATION] !== undefined || ann[BACKEND_REF_ANNOTATION] !== undefined);
}

/** Our header-match rule, by the name the route's annotation gives it. */
function isOurHeaderRule(route: HttpRoute, ruleName: string | undefined): boolean {
  const marked = route.metadata?.annotations?.[HEADER_RULE_ANNOTATION];
  return marked !== undefined && ruleName === marked;
}

/**
 * What a route sends to `canaryService`, read from the route itself whatever its shape (a read
 * must not depend on a route we understand): the largest canary share of any rule but our header
 * rule, in percent, and our header rule when present (it reaches the canary at any weight).
 */
export function routeStateOf(route: HttpRoute, canaryService: string): RouteState {
  const namespace = route.metadata?.namespace ?? '';
  let weight = 0;
  const overrides: string[] = [];
  (route.spec?.rules ?? []).forEach((rule, i) => {
    const refs = rule.backendRefs ?? [];
    const canary = refs.filter((b) => isServiceRef(b, canaryService, namespace)).reduce((s, b) => s + (b.weight ?? 1), 0);
    if (isOurHeaderRule(route, rule.name)) {
      if (canary > 0) overrides.push(`spec.rules[${i}] (${rule.name}: header match to the canary)`);
      return;
    }
    const total = refs.reduce((s, b) => s + (b.weight ?? 1), 0);
    if (canary > 0 && total > 0) weight = Math.max(weight, Math.round((100 * canary) / total));
  });
  return { name: route.metadata?.name ?? '', weight, overrides };
}

function ownStateOf(route: HttpRoute, canaryService: string): OwnRouteState {
  const ann = route.metadata?.annotations ?? {};
  return { ...routeStateOf(route, canaryService), stoppedBy: ann[STOP_ANNOTATION] || null, rolloutId: ann[ROLLOUT_ID_ANNOTATION] ?? null };
}

/** The canary Service a route of ours names (its annotation), else the target's default. */
function canaryOf(route: HttpRoute, fallback: string): string {
  return route.metadata?.annotations?.[BACKEND_REF_ANNOTATION] ?? fallback;
}

/**
 * The shape of one of our routes for a stop, found from our marks alone (a stop may run without
 * the policy, so without the stable Service's name): our backendRef by the annotated canary
 * Service, the stable one as the other backendRef of that rule.
 */
export function shapeForStop(route: HttpRoute): RouteShape {
  const namespace = route.metadata?.namespace ?? '';
  const annotations = { ...route.metadata?.annotations };
  const canary = annotations[BACKEND_REF_ANNOTATION];
  const rules = route.spec?.rules ?? [];
  let ruleIndex = -1;
  if (canary !== undefined) ruleIndex = rules.findIndex((r) => !isOurHeaderRule(route, r.name) && (r.backendRefs ?? []).some((b) => isServiceRef(b, canary, namespace)));
  const backendRefs = ruleIndex >= 0 ? (rules[ruleIndex]?.backendRefs ?? []) : [];
  const canaryIndex = canary !== undefined && ruleIndex >= 0 ? backendRefs.findIndex((b) => isServiceRef(b, canary, namespace)) : -1;
  const others = backendRefs.map((_, j) => j).filter((j) => j !== canaryIndex);
  const stableIndex = others.length === 1 ? (others[0] as number) : -1;
  const original = Number(annotations[STABLE_WEIGHT_ANNOTATION]);
  const headerRuleIndex = rules.findIndex((r) => isOurHeaderRule(route, r.name) && r.name === HEADER_RULE_NAME);
  return {
    ref: `${namespace}/${route.metadata?.name ?? ''}`,
    ruleIndex: Math.max(ruleIndex, 0),
    backendRefs,
    stableIndex,
    stableWeight: stableIndex >= 0 ? (backendRefs[stableIndex]?.weight ?? 1) : 0,
    canaryIndex: canaryIndex >= 0 ? canaryIndex : null,
    canaryWeight: canaryIndex >= 0 ? (backendRefs[canaryIndex]?.weight ?? 1) : 0,
    headerRuleIndex: headerRuleIndex >= 0 ? headerRuleIndex : null,
    originalStableWeight: Number.isInteger(original) && original > 0 ? original : 1,
    annotations,
    hasAnnotations: route.metadata?.annotations !== undefined,
  };
}

export class GatewayRouter implements TrafficRouter {
  private readonly api: CustomObjectsApi;
  private readonly retry: Retry;

  constructor(private readonly opts: GatewayRouterOptions) {
    this.api = opts.kc.makeApiClient(CustomObjectsApi);
    this.retry = { ...opts.retry, server: serverOf(opts.kc) };
  }

  private get ref(): string {
    return `${this.opts.namespace}/${this.opts.httpRoute}`;
  }

  /** On the stop path one call is one attempt, bounded by the time the stop has left. */
  private retryFor(budget?: CallBudget): Retry {
    if (!budget) return this.retry;
    const ms = Math.max(1, Math.min(this.retry.timeoutMs ?? 30_000, budget.timeoutMs));
    return { ...this.retry, attempts: 1, timeoutMs: ms, deadlineMs: ms };
  }

  private async read(name: string, retry: Retry = this.retry): Promise<HttpRoute | null> {
    const { namespace } = this.opts;
    try {
      return (await withKubeRetry(
        `reading HTTPRoute ${namespace}/${name}`,
        (o) => this.api.getNamespacedCustomObject({ group: HTTPROUTE_GROUP, version: HTTPROUTE_VERSION, namespace, plural: PLURAL, name }, o),
        retry,
      )) as HttpRoute;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  private async list(retry: Retry, labelSelector?: string): Promise<HttpRoute[]> {
    const { namespace } = this.opts;
    const list = (await withKubeRetry(
      `listing HTTPRoutes in namespace ${namespace}`,
      (o) => this.api.listNamespacedCustomObject({ group: HTTPROUTE_GROUP, version: HTTPROUTE_VERSION, namespace, plural: PLURAL, ...(labelSelector && { labelSelector }) }, o),
      retry,
    )) as { items?: HttpRoute[] };
    return list.items ?? [];
  }

  /** One JSON Patch; false when a `test` op failed (422: the route changed since it was read). */
  private async patch(name: string, ops: JsonPatchOp[], what: string, retry: Retry = this.retry): Promise<boolean> {
    const { namespace } = this.opts;
    try {
      await withKubeRetry(
        what,
        (o) =>
          this.api.patchNamespacedCustomObject(
            { group: HTTPROUTE_GROUP, version: HTTPROUTE_VERSION, namespace, plural: PLURAL, name, body: ops },
            setHeaderOptions('Content-Type', JSON_PATCH, o),
          ),
        retry,
      );
      return true;
    } catch (err) {
      if (statusOf(err) === 422) return false;
      throw err;
    }
  }

  private async readRequired(): Promise<HttpRoute> {
    const route = await this.read(this.opts.httpRoute);
    if (!route) {
      throw new CanaryError('invalid-input', `HTTPRoute ${this.ref} does not exist; name the route that sends to Service ${this.opts.names.stableService} in the policy's spec.traffic.httpRoute`);
    }
    return route;
  }

  private parse(route: HttpRoute): RouteShape {
    const { names, target } = this.opts;
    const label = route.metadata?.labels?.[TARGET_LABEL];
    if (label !== undefined && label !== target && route.metadata?.annotations?.[BACKEND_REF_ANNOTATION] !== undefined) {
      throw new CanaryError('invalid-input', `HTTPRoute ${this.ref} is split by canary-cli for target ${label}, not ${target}; finish or roll back that rollout first; nothing was changed`);
    }
    return parseRoute(route, { stableService: names.stableService, canaryService: names.canaryService });
  }

  /** Read-only: everything prepare() would refuse, so a deploy can refuse before its first write. */
  async verify(): Promise<void> {
    this.parse(await this.readRequired());
  }

  async prepare(): Promise<void> {
    const { rolloutId, target, names } = this.opts;
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt += 1) {
      const route = await this.readRequired();
      const shape = this.parse(route);
      const stoppedBy = shape.annotations[STOP_ANNOTATION];
      if (stoppedBy && shape.annotations[ROLLOUT_ID_ANNOTATION] === rolloutId) throw new StopRequestedError(this.ref, stoppedBy);
      const ops = preparePatch(route, shape, { rolloutId, target, canaryService: names.canaryService, ...(this.opts.fenceToken !== undefined && { fenceToken: this.opts.fenceToken }) });
      if (await this.patch(this.opts.httpRoute, ops, `adding the canary backendRef to HTTPRoute ${this.ref}`)) return;
    }
    throw new CanaryError('unexpected', `HTTPRoute ${this.ref} kept changing while it was being prepared; something else is writing it`);
  }

  async setWeight(weight: number): Promise<void> {
    checkWeight(weight);
    const { rolloutId, target } = this.opts;
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt += 1) {
      const route = await this.read(this.opts.httpRoute);
      if (!route) {
        if (weight === 0) return;
        throw new CanaryError('unexpected', `HTTPRoute ${this.ref} no longer exists, so the canary cannot get ${weight}% of traffic; it was deleted outside this rollout`);
      }
      if (route.metadata?.labels?.[TARGET_LABEL] !== target) {
        if (weight === 0 && routeStateOf(route, this.opts.names.canaryService).weight === 0) return;
        throw new CanaryError('invalid-input', `HTTPRoute ${this.ref} carries no canary-cli mark for ${target} (label ${TARGET_LABEL}); refusing to change its weights`);
      }
      // 0% is found from our marks alone: a route changed mid-rollout into a shape we would not
      // take on must still get our backendRef out of it.
      const shape = weight === 0 ? shapeForStop(route) : this.parse(route);
      // Restored to stable alone already (a promotion's last step, repeated): 0% holds.
      if (weight === 0 && shape.canaryIndex === null && shape.headerRuleIndex === null) return;
      const fenced = fenceFailure(shape, rolloutId, this.opts.fenceToken);
      if (fenced) throw new StopRequestedError(this.ref, fenced);
      const { headerRouting, names } = this.opts;
      const smoke = weight > 0 && headerRouting ? headerRule(route, shape, { canaryService: names.canaryService, headerRouting }) : undefined;
      const ops = weightPatch(shape, weight, rolloutId, smoke, this.opts.fenceToken);
      if (!ops) return;
      if (await this.patch(this.opts.httpRoute, ops, `setting the canary weight of HTTPRoute ${this.ref} to ${weight}%`)) return;
      // A test op failed: read again to learn whether a stop landed, or the route moved.
    }
    throw new CanaryError('unexpected', `HTTPRoute ${this.ref} changed under every one of ${CONFLICT_ATTEMPTS} attempts to set its canary weight to ${weight}%; something else keeps writing it`);
  }

  /**
   * Header routing on at 0% (the smoke phase, once the canary is ready): our header-match rule
   * added in one patch fenced like a raise, the weights untouched, so only requests carrying the
   * policy's header reach the canary. A raise keeps the rule; a stop or a write to 0% removes it.
   */
  async routeByHeader(): Promise<void> {
    const { headerRouting, names, rolloutId, target } = this.opts;
    if (!headerRouting) throw new CanaryError('invalid-input', 'smoke tests need spec.target.headerRouting: without it no request can reach the canary at 0%');
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt += 1) {
      const route = await this.read(this.opts.httpRoute);
      if (!route) throw new StopRequestedError(this.ref, 'the HTTPRoute was deleted');
      if (!isOurRoute(route, target)) throw new StopRequestedError(this.ref, `it carries no canary-cli mark for ${target}`);
      const shape = this.parse(route);
      const fenced = fenceFailure(shape, rolloutId, this.opts.fenceToken);
      if (fenced) throw new StopRequestedError(this.ref, fenced);
      const ops = headerRoutingPatch(shape, headerRule(route, shape, { canaryService: names.canaryService, headerRouting }), rolloutId, this.opts.fenceToken);
      if (!ops) return;
      if (await this.patch(this.opts.httpRoute, ops, `adding the header-match rule (${headerRouting.header}) to HTTPRoute ${this.ref} at 0%`)) return;
    }
    throw new CanaryError('unexpected', `HTTPRoute ${this.ref} changed under every one of ${CONFLICT_ATTEMPTS} attempts to turn header routing on; something else keeps writing it`);
  }

  /** The fence a write to stable is tied to: our route still ours (rollout and holder), no stop written on it. */
  async checkFence(): Promise<void> {
    const route = await this.read(this.opts.httpRoute);
    if (!route) throw new StopRequestedError(this.ref, 'the HTTPRoute was deleted');
    const fenced = fenceFailure(shapeForStop(route), this.opts.rolloutId, this.opts.fenceToken);
    if (fenced) throw new StopRequestedError(this.ref, fenced);
  }

  /**
   * A `--resume` takes the route over from the process it replaces: its fence token is written
   * (conditional on the rollout id and on the route as read), so from here on the predecessor's
   * raises fail their test op. Refused like a raise when the route is another rollout's.
   */
  async claim(): Promise<void> {
    const token = this.opts.fenceToken;
    if (token === undefined) return;
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt += 1) {
      const route = await this.read(this.opts.httpRoute);
      if (!route) throw new StopRequestedError(this.ref, 'the HTTPRoute was deleted');
      const ann = route.metadata?.annotations ?? {};
      const id = ann[ROLLOUT_ID_ANNOTATION];
      if (id !== undefined && id !== this.opts.rolloutId) throw new StopRequestedError(this.ref, `it now belongs to rollout ${id}`);
      if (!isOurRoute(route, this.opts.target)) throw new StopRequestedError(this.ref, `it carries no canary-cli mark for ${this.opts.target}`);
      if (ann[FENCE_ANNOTATION] === token) return;
      if (await this.patch(this.opts.httpRoute, claimPatch(route, token), `claiming HTTPRoute ${this.ref} for ${token}`)) return;
    }
    throw new CanaryError('unexpected', `HTTPRoute ${this.ref} kept changing while this deploy claimed it`);
  }

  /** One route of ours to stable alone with the stop marker; re-read and rebuilt when the patch was stale. */
  private async stopOne(first: HttpRoute, marker: string, retry: Retry): Promise<void> {
    let route: HttpRoute | null = first;
    const name = first.metadata?.name ?? '';
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS && route; attempt += 1) {
      const shape = shapeForStop(route);
      if (!needsStop(shape)) return;
      if (await this.patch(name, stopPatch(shape, marker), `setting HTTPRoute ${this.opts.namespace}/${name} to stable alone (stop)`, retry)) return;
      route = await this.read(name, retry);
    }
    if (route) throw new CanaryError('unexpected', `HTTPRoute ${this.opts.namespace}/${name} changed under every one of ${CONFLICT_ATTEMPTS} attempts to stop its canary; something else keeps writing it`);
  }

  async stop(marker: string, budget?: CallBudget): Promise<OwnRouteState[]> {
    const { target, names } = this.opts;
    const retry = this.retryFor(budget);
    const owned = (await this.list(retry, `${TARGET_LABEL}=${target}`)).filter((r) => isOurRoute(r, target));
    let failure: unknown;
    const safe: string[] = [];
    for (const route of owned) {
      try {
        await this.stopOne(route, marker, retry);
        safe.push(route.metadata?.name ?? '');
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) {
      const note = safe.length ? ` (${safe.join(', ')} on stable alone)` : '';
      if (failure instanceof CanaryError) throw new CanaryError(failure.kind, `${failure.message}${note}`, failure.details, { cause: failure });
      throw failure;
    }
    return owned.map((r) => ownStateOf(r, canaryOf(r, names.canaryService))).sort((a, b) => a.name.localeCompare(b.name));
  }

  async inspect(budget?: CallBudget): Promise<TrafficState> {
    const { target, names } = this.opts;
    const items = await this.list(this.retryFor(budget));
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    const ours = items.filter((r) => isOurRoute(r, target)).map((r) => ownStateOf(r, canaryOf(r, names.canaryService)));
    const foreign = items
      .filter((r) => !isOurRoute(r, target))
      .map((r) => routeStateOf(r, names.canaryService))
      .filter((s) => (s.weight ?? 0) > 0 || s.overrides.length > 0);
    return { ours: ours.sort(byName), foreign: foreign.sort(byName) };
  }

  async getWeight(): Promise<number | null> {
    const route = await this.read(this.opts.httpRoute);
    if (!route || !isOurRoute(route, this.opts.target)) return null;
    return routeStateOf(route, canaryOf(route, this.opts.names.canaryService)).weight ?? 0;
  }
}

/** Every HTTPRoute of ours for a target (by label), as `canary status` lists canary routes. */
export async function findOwnedHttpRoutes(kc: KubeConfig, namespace: string, target: string, canaryService: string, retry: RetryPolicy = {}): Promise<OwnRouteState[]> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const list = (await withKubeRetry(
    `looking for the HTTPRoutes of ${target} in namespace ${namespace}`,
    (o) => api.listNamespacedCustomObject({ group: HTTPROUTE_GROUP, version: HTTPROUTE_VERSION, namespace, plural: PLURAL, labelSelector: `${TARGET_LABEL}=${target}` }, o),
    { ...retry, server: serverOf(kc) },
  )) as { items?: HttpRoute[] };
  return (list.items ?? [])
    .filter((r) => isOurRoute(r, target))
    .map((r) => ownStateOf(r, canaryOf(r, canaryService)))
    .sort((a, b) => a.name.localeCompare(b.name));
}
