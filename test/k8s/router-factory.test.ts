// `canary rollback` stops every router's routes: the policy's router strictly, the others'
// 403 (no RBAC for that kind) and 404 (no such API, e.g. no Gateway API CRDs) mean "not used here".

import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { KubeConfig } from '@kubernetes/client-node';
import { GatewayRouter } from '../../src/k8s/gateway-router.js';
import { createTrafficRouter, StopEveryRouter } from '../../src/k8s/router-factory.js';
import { targetNames } from '../../src/policy/policy.js';
import type { OwnRouteState, TrafficRouter } from '../../src/rollout/ports.js';

const own = (name: string): OwnRouteState => ({ name, weight: 0, overrides: [], stoppedBy: 'x', rolloutId: 'r' });

/** A router whose stop and inspect answer `result`, or fail with it. */
function router(result: OwnRouteState[] | Error): TrafficRouter & { stops: number } {
  const r = {
    stops: 0,
    prepare: async () => undefined,
    setWeight: async () => undefined,
    getWeight: async () => null,
    stop: async () => {
      r.stops += 1;
      if (result instanceof Error) throw result;
      return result;
    },
    inspect: async () => {
      if (result instanceof Error) throw result;
      return { ours: result, foreign: [] };
    },
  };
  return r;
}
const forbidden = () => new CanaryError('invalid-input', 'Kubernetes API refused listing: forbidden', [], { cause: { code: 403 } });
const notFound = () => Object.assign(new Error('HTTP-Code: 404'), { code: 404 });
const unreachable = () => new CanaryError('unreachable', 'Kubernetes API unreachable');

describe('StopEveryRouter', () => {
  it('without a policy: stops with every router, drops 403/404 of one, fails only when none answered', async () => {
    const ingress = router([own('checkout-canary')]);
    const gateway = router(notFound());
    expect(await new StopEveryRouter([ingress, gateway], null).stop('m')).toEqual([own('checkout-canary')]);
    expect(ingress.stops + gateway.stops).toBe(2);
    expect(await new StopEveryRouter([router(forbidden()), router([own('checkout')])], null).stop('m')).toEqual([own('checkout')]);
    await expect(new StopEveryRouter([router(forbidden()), router(notFound())], null).stop('m')).rejects.toThrow('forbidden');
  });

  it('an unreachable API server is never dropped', async () => {
    await expect(new StopEveryRouter([router([own('a')]), router(unreachable())], null).stop('m')).rejects.toThrow('unreachable');
  });

  it("with a policy: the policy's router's 403 is the operator's to see; the other's is dropped", async () => {
    const gateway = router(forbidden());
    await expect(new StopEveryRouter([router([]), gateway], gateway).stop('m')).rejects.toThrow('forbidden');
    const ingress = router([own('checkout-canary')]);
    const merged = await new StopEveryRouter([ingress, router(forbidden())], ingress).inspect();
    expect(merged).toEqual({ ours: [own('checkout-canary')], foreign: [] });
  });
});

describe('createTrafficRouter', () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const ctx = { kc, namespace: 'shop', names: targetNames('checkout', {}), target: 'checkout', rolloutId: 'r1', fenceToken: 'run 1 epoch 0' };
  const tokenOf = (r: unknown) => (r as { opts: { fenceToken?: string } }).opts.fenceToken;

  it("hands the deploy's fence token to either router (issue 16 item 5)", () => {
    expect(createTrafficRouter({ router: 'gateway-api' }, ctx)).toBeInstanceOf(GatewayRouter);
    expect(tokenOf(createTrafficRouter({ router: 'gateway-api' }, ctx))).toBe('run 1 epoch 0');
    expect(tokenOf(createTrafficRouter({ router: 'ingress-nginx' }, ctx))).toBe('run 1 epoch 0');
  });
});
