// `canary status` without -p: our routes of both kinds, found by label, and which one is shown.

import { KubeConfig } from '@kubernetes/client-node';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import type { OwnRouteState } from '../../src/rollout/ports.js';

const found = vi.hoisted(() => ({ ingresses: [] as unknown[] | Error, httpRoutes: [] as unknown[] | Error }));
vi.mock('../../src/k8s/ingress-router.js', async (orig) => ({
  ...(await orig<object>()),
  findOwnedCanaryIngresses: async () => {
    if (found.ingresses instanceof Error) throw found.ingresses;
    return found.ingresses;
  },
}));
vi.mock('../../src/k8s/gateway-router.js', async (orig) => ({
  ...(await orig<object>()),
  findOwnedHttpRoutes: async () => {
    if (found.httpRoutes instanceof Error) throw found.httpRoutes;
    return found.httpRoutes;
  },
}));
const { findAnyOwnedCanaryRoutes } = await import('../../src/k8s/router-factory.js');
const { targetNames } = await import('../../src/policy/policy.js');

const kc = new KubeConfig();
const names = targetNames('checkout', {});
const ing = { name: 'checkout-canary', weight: 10, overrides: [], stoppedBy: null };
const route = (name: string, rolloutId: string | null, weight = 25): OwnRouteState => ({ name, weight, overrides: [], stoppedBy: null, rolloutId });
const refused = (code: number) => new CanaryError('invalid-input', `Kubernetes API refused listing: HTTP ${code}`, [], { cause: { code } });
const find = (record: { id?: string; router?: 'ingress-nginx' | 'gateway-api' } = {}) => findAnyOwnedCanaryRoutes(kc, 'shop', 'checkout', names, record);

describe('findAnyOwnedCanaryRoutes (status without -p)', () => {
  beforeEach(() => {
    found.ingresses = [];
    found.httpRoutes = [];
  });

  it('an HTTPRoute rollout: the HTTPRoute, whether the Ingress API is empty, refused (403) or absent', async () => {
    found.httpRoutes = [route('checkout', 'r1')];
    expect(await find({ id: 'r1' })).toEqual({ routes: [route('checkout', 'r1')], live: 'checkout', kind: 'HTTPRoute' });
    found.ingresses = refused(403);
    expect((await find({ id: 'r1' })).kind).toBe('HTTPRoute');
  });

  it('an Ingress rollout: the Ingress, the HTTPRoute API refused (403) or absent (404, no CRDs) meaning "not used here"', async () => {
    found.ingresses = [ing];
    for (const err of [refused(403), Object.assign(new Error('HTTP-Code: 404'), { code: 404 }), []]) {
      found.httpRoutes = err;
      expect(await find({ id: 'r1' })).toEqual({ routes: [ing], live: 'checkout-canary', kind: 'Ingress' });
    }
  });

  it('both kinds hold routes of ours: the one the record names, else the HTTPRoute only when it carries the record\'s rollout', async () => {
    found.ingresses = [ing];
    found.httpRoutes = [route('storefront', 'r2')];
    expect((await find({ id: 'r1' })).kind).toBe('Ingress');
    expect(await find({ id: 'r2' })).toMatchObject({ kind: 'HTTPRoute', live: 'storefront' });
    expect((await find({ id: 'r2', router: 'ingress-nginx' })).kind).toBe('Ingress');
    expect((await find({ id: 'r1', router: 'gateway-api' })).kind).toBe('HTTPRoute');
  });

  it('an HTTPRoute renamed by spec.traffic.httpRoute: the live one is the route this rollout prepared', async () => {
    found.httpRoutes = [route('checkout', 'r0', 0), route('storefront', 'r1')];
    expect((await find({ id: 'r1' })).live).toBe('storefront');
    expect((await find({ id: 'r9' })).live).toBe('checkout');
  });

  it('fails when neither API answers, and never drops an unreachable API server', async () => {
    found.ingresses = refused(403);
    found.httpRoutes = refused(404);
    await expect(find()).rejects.toThrow('HTTP 403');
    found.ingresses = [ing];
    found.httpRoutes = new CanaryError('unreachable', 'Kubernetes API unreachable');
    await expect(find()).rejects.toThrow('unreachable');
  });
});
