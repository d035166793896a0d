// Which router moves a target's traffic (the policy's spec.traffic.router), built in one place
// for deploy, rollback and status. A router moves traffic; a metric preset measures it.

import type { KubeConfig } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import type { Policy, TargetNames } from '../policy/policy.js';
import type { RouterName } from '../policy/schema.js';
import type { CallBudget, OwnRouteState, RouteState, TrafficRouter, TrafficState } from '../rollout/ports.js';
import { statusCode } from './api-errors.js';
import { findOwnedHttpRoutes, GatewayRouter } from './gateway-router.js';
import { findOwnedCanaryIngresses, IngressRouter } from './ingress-router.js';
import type { RetryPolicy } from '../retry.js';

export interface RouterContext {
  kc: KubeConfig;
  namespace: string;
  names: TargetNames;
  target: string;
  rolloutId: string;
  retry?: RetryPolicy;
  /** The lease holder's token (identity + epoch) that every raise tests (both routers). */
  fenceToken?: string;
}

/** A router that can also check, read-only, everything its prepare() would refuse. */
export type VerifiableRouter = TrafficRouter & { verify(): Promise<void> };

export function routerOf(traffic: Policy['traffic']): RouterName {
  return traffic?.router ?? 'ingress-nginx';
}

/** The HTTPRoute the gateway-api router splits: spec.traffic.httpRoute, default the target's name. */
export function httpRouteOf(traffic: Policy['traffic'], target: string): string {
  return traffic?.httpRoute ?? target;
}

export function createTrafficRouter(traffic: Policy['traffic'], ctx: RouterContext): VerifiableRouter {
  const { kc, namespace, names, target, rolloutId, retry, fenceToken } = ctx;
  const common = { kc, namespace, names, target, rolloutId, ...(retry && { retry }), ...(names.headerRouting && { headerRouting: names.headerRouting }), ...(fenceToken !== undefined && { fenceToken }) };
  if (routerOf(traffic) === 'gateway-api') return new GatewayRouter({ ...common, httpRoute: httpRouteOf(traffic, target) });
  return new IngressRouter(common);
}

/** Refused (403: no RBAC for that kind) or absent (404: e.g. no Gateway API CRDs): a router this cluster does not use. */
function notInUse(err: unknown): boolean {
  const code = statusCode(err) ?? (err instanceof CanaryError ? statusCode(err.cause) : undefined);
  return code === 403 || code === 404;
}

/**
 * The stop path's router for `canary rollback`, which must work without the policy (its first
 * write needs none) and whatever router made the canary routes: it stops and inspects with every
 * router. Errors of `primary` are the caller's; the others' 403/404 mean "not used here" and are
 * dropped. Without a primary (no policy yet), it fails only when every router fails.
 */
export class StopEveryRouter implements TrafficRouter {
  constructor(
    private readonly routers: readonly TrafficRouter[],
    private readonly primary: TrafficRouter | null,
  ) {}

  private async each<T>(call: (r: TrafficRouter) => Promise<T>): Promise<T[]> {
    const settled = await Promise.allSettled(this.routers.map(call));
    const ok: T[] = [];
    const failures: unknown[] = [];
    let dropped: unknown;
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') ok.push(s.value);
      else if (this.routers[i] !== this.primary && notInUse(s.reason)) dropped ??= s.reason;
      else failures.push(s.reason);
    });
    if (failures.length > 0) throw failures[0];
    if (ok.length === 0) throw dropped;
    return ok;
  }

  private get main(): TrafficRouter {
    return this.primary ?? (this.routers[0] as TrafficRouter);
  }

  prepare(): Promise<void> {
    return this.main.prepare();
  }

  setWeight(weight: number): Promise<void> {
    return this.main.setWeight(weight);
  }

  getWeight(): Promise<number | null> {
    return this.main.getWeight();
  }

  async stop(marker: string, budget?: CallBudget): Promise<OwnRouteState[]> {
    return (await this.each((r) => r.stop(marker, budget))).flat();
  }

  async inspect(budget?: CallBudget): Promise<TrafficState> {
    const states = await this.each((r) => r.inspect(budget));
    return { ours: states.flatMap((s) => s.ours), foreign: states.flatMap((s) => s.foreign) };
  }
}

/**
 * `canary rollback`'s router: every kind, the policy's own (when a policy is known) strict.
 * `traffic` undefined with `policyKnown` false: before the policy is read.
 */
export function createStopRouter(traffic: Policy['traffic'], ctx: RouterContext, policyKnown: boolean): TrafficRouter {
  const ingress = createTrafficRouter({ router: 'ingress-nginx' }, ctx);
  const gateway = createTrafficRouter({ router: 'gateway-api', ...(traffic?.httpRoute !== undefined && { httpRoute: traffic.httpRoute }) }, ctx);
  const primary = !policyKnown ? null : routerOf(traffic) === 'gateway-api' ? gateway : ingress;
  return new StopEveryRouter([ingress, gateway], primary);
}

/** The canary routes of ours that `canary status` shows, and the name of the one the policy drives. */
export async function findOwnedCanaryRoutes(
  traffic: Policy['traffic'],
  kc: KubeConfig,
  namespace: string,
  target: string,
  names: TargetNames,
): Promise<{ routes: Array<RouteState & { stoppedBy: string | null }>; live: string; kind: 'Ingress' | 'HTTPRoute' }> {
  if (routerOf(traffic) === 'gateway-api') {
    return { routes: await findOwnedHttpRoutes(kc, namespace, target, names.canaryService), live: httpRouteOf(traffic, target), kind: 'HTTPRoute' };
  }
  return { routes: await findOwnedCanaryIngresses(kc, namespace, target), live: names.canaryIngress, kind: 'Ingress' };
}

/** Our routes of one kind, or the 403/404 saying this cluster does not serve or allow that kind to us. */
async function ownedOrNotInUse<T>(find: () => Promise<T[]>): Promise<{ found: T[] } | { error: unknown }> {
  try {
    return { found: await find() };
  } catch (err) {
    if (notInUse(err)) return { error: err };
    throw err;
  }
}

/**
 * `canary status` without a policy does not know the router: it looks for our routes of both
 * kinds by label (a 403/404 from one API means "not used here"; from both, the Ingress API's is
 * the error). The kind the record names wins when it has routes of ours (`router`, for records
 * that carry it); otherwise whichever kind has them, and with both, the HTTPRoute only when it
 * carries the record's rollout id. The live route is the default name of its kind, or for
 * HTTPRoutes (whose name spec.traffic.httpRoute may change) the one this rollout prepared.
 */
export async function findAnyOwnedCanaryRoutes(
  kc: KubeConfig,
  namespace: string,
  target: string,
  names: TargetNames,
  record: { id?: string; router?: RouterName } = {},
): Promise<{ routes: Array<RouteState & { stoppedBy: string | null }>; live: string; kind: 'Ingress' | 'HTTPRoute' }> {
  const [ingresses, httpRoutes] = await Promise.all([
    ownedOrNotInUse(() => findOwnedCanaryIngresses(kc, namespace, target)),
    ownedOrNotInUse(() => findOwnedHttpRoutes(kc, namespace, target, names.canaryService)),
  ]);
  if ('error' in ingresses && 'error' in httpRoutes) throw ingresses.error;
  const ing = 'found' in ingresses ? ingresses.found : [];
  const http = 'found' in httpRoutes ? httpRoutes.found : [];
  const asIngress = { routes: ing, live: names.canaryIngress, kind: 'Ingress' as const };
  const mine = http.find((r) => record.id !== undefined && r.rolloutId === record.id);
  const asHttp = { routes: http, live: (mine ?? http.find((r) => r.name === target) ?? (http.length === 1 ? http[0] : undefined))?.name ?? target, kind: 'HTTPRoute' as const };
  if (record.router === 'gateway-api' && http.length > 0) return asHttp;
  if (record.router === 'ingress-nginx' && ing.length > 0) return asIngress;
  if (http.length > 0 && (ing.length === 0 || mine !== undefined)) return asHttp;
  return asIngress;
}
