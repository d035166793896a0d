// The ingress-nginx traffic router: a second Ingress, ours, carrying the stable Ingress's routes
// to the canary Service, and a weight annotation that is the only thing later changed.
// The stable Ingress and any Ingress we did not create are read, never written. The patches
// themselves are in ingress-writes.ts.

import { NetworkingV1Api, setHeaderOptions, type KubeConfig, type V1HTTPIngressPath, type V1Ingress, type V1IngressRule } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import type { TargetNames } from '../policy/policy.js';
import { StopRequestedError, type CallBudget, type OwnRouteState, type TrafficRouter, type TrafficState } from '../rollout/ports.js';
import { isConflict, isNotFound, withKubeRetry } from './api-errors.js';
import { serverOf } from './connection.js';
import {
  annotationPointer,
  CANARY_ANNOTATION,
  CONFLICT_ATTEMPTS,
  fencedWeight,
  fenceFailure,
  JSON_PATCH,
  LEGACY_CLASS_ANNOTATION,
  parseWeight,
  ROUTING_OVERRIDE_ANNOTATIONS,
  statusOf,
  stopAll,
  trafficStateOf,
  WEIGHT_ANNOTATION,
  type JsonPatchOp,
} from './ingress-writes.js';
import { FENCE_ANNOTATION, isOwnedBy, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ownershipLabels, ownershipSelector, ROLLOUT_ID_ANNOTATION, STOP_ANNOTATION } from './labels.js';
import type { RetryPolicy } from '../retry.js';

export {
  annotationPointer,
  BY_COOKIE_ANNOTATION,
  BY_HEADER_ANNOTATION,
  BY_HEADER_PATTERN_ANNOTATION,
  BY_HEADER_VALUE_ANNOTATION,
  CANARY_ANNOTATION,
  LEGACY_CLASS_ANNOTATION,
  ROUTING_OVERRIDE_ANNOTATIONS,
  trafficStateOf,
  WEIGHT_ANNOTATION,
} from './ingress-writes.js';

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
  retry?: RetryPolicy;
  /**
   * This process's fence token (lease holder identity and epoch): written when the route is
   * prepared or claimed, tested by every raise, so a predecessor that a `--resume` replaced
   * (same rollout id) loses its writes. Without it only the rollout id is fenced.
   */
  fenceToken?: string;
}

function routeKeys(rules: readonly V1IngressRule[] | undefined): Set<string> {
  const keys = new Set<string>();
  for (const rule of rules ?? []) {
    for (const p of rule.http?.paths ?? []) keys.add(`${rule.host ?? '*'}${p.path ?? '/'}`);
  }
  return keys;
}

export class IngressRouter implements TrafficRouter {
  private readonly api: NetworkingV1Api;
  private readonly retry: RetryPolicy & { server: string };

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
    const { names, namespace, target, rolloutId } = this.opts;
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
    // Header routing arrives with the first raise (setWeight), not here: at 0% the canary may
    // have no pods yet, and smoke-test requests would reach a Service with no endpoints.
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
    await fencedWeight(this.api, namespace, names.canaryIngress, weight, rolloutId, (ing) => isOwnedBy(ing.metadata?.labels, target), this.retry, this.opts.fenceToken, this.opts.headerRouting);
  }

  /**
   * Header routing on at 0% (canary-by-header), in the same fenced patch as a weight change: only
   * requests carrying the policy's header reach the canary. The smoke phase, once the canary is ready.
   */
  async routeByHeader(): Promise<void> {
    const { namespace, names, target, rolloutId, headerRouting } = this.opts;
    if (!headerRouting) throw new CanaryError('invalid-input', 'smoke tests need spec.target.headerRouting: without it no request can reach the canary at 0%');
    await fencedWeight(this.api, namespace, names.canaryIngress, 0, rolloutId, (ing) => isOwnedBy(ing.metadata?.labels, target), this.retry, this.opts.fenceToken, headerRouting, true);
  }

  /** Our canary Ingress as it is now; gone means a stop (or a hand) removed it, which fences us out. */
  private async readOwn(): Promise<V1Ingress> {
    const { namespace, names } = this.opts;
    try {
      return await withKubeRetry(`reading Ingress ${this.ref}`, (o) => this.api.readNamespacedIngress({ name: names.canaryIngress, namespace }, o), this.retry);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      throw new StopRequestedError(this.ref, 'the canary Ingress was deleted');
    }
  }

  /** The fence a write to stable is tied to: our route still ours, no stop written on it. */
  async checkFence(): Promise<void> {
    const ing = await this.readOwn();
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
      const ing = await this.readOwn();
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
  private retryFor(budget?: CallBudget): RetryPolicy & { server: string } {
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
export async function findOwnedCanaryIngresses(kc: KubeConfig, namespace: string, target: string, retry: RetryPolicy = {}): Promise<OwnedCanaryIngress[]> {
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
export async function findOwnedCanaryIngress(kc: KubeConfig, namespace: string, target: string, retry: RetryPolicy = {}): Promise<OwnedCanaryIngress | null> {
  return (await findOwnedCanaryIngresses(kc, namespace, target, retry))[0] ?? null;
}
