import { describe, expect, it } from 'vitest';
import { httpRouteFindings } from '../../src/doctor/httproute-checks.js';
import type { HttpRoute } from '../../src/k8s/httproute-shape.js';
import { targetNames } from '../../src/policy/policy.js';

// doctor's Gateway API checks: a route the router would refuse, and a route no Gateway accepted.

const names = targetNames('checkout', {});

function route(o: { rules?: NonNullable<HttpRoute['spec']>['rules']; parents?: NonNullable<HttpRoute['status']>['parents']; generation?: number } = {}): HttpRoute {
  return {
    metadata: { name: 'checkout', namespace: 'shop', generation: o.generation ?? 2 },
    spec: { parentRefs: [{ name: 'public' }], rules: o.rules ?? [{ backendRefs: [{ name: 'checkout', port: 80 }] }] },
    status: {
      parents: o.parents ?? [
        { parentRef: { name: 'public' }, controllerName: 'gateway.envoyproxy.io/gatewayclass-controller', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', observedGeneration: 2 }, { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', observedGeneration: 2 }] },
      ],
    },
  };
}
const verdict = (r: HttpRoute, check: string) => httpRouteFindings(r, names).find((f) => f.check === check);

describe('doctor: Gateway API routes', () => {
  it('passes a route with one rule to stable that its Gateway accepted at the current generation', () => {
    expect(httpRouteFindings(route(), names).map((f) => f.verdict)).toEqual(['ok', 'ok']);
    expect(verdict(route(), 'route-shape')?.detail).toContain('rule 0 sends to checkout');
  });

  it('fails a route the router would refuse, with the router\'s own reason', () => {
    const two = route({ rules: [{ backendRefs: [{ name: 'checkout', port: 80 }] }, { backendRefs: [{ name: 'checkout', port: 80 }] }] });
    const f = verdict(two, 'route-shape');
    expect(f?.verdict).toBe('fail');
    expect(f?.detail).toMatch(/^HTTPRoute shop\/checkout: /);
    expect(f?.detail).not.toContain('nothing was changed');
  });

  it('fails a route no Gateway reported on, and one a Gateway refused, naming the reason', () => {
    expect(verdict(route({ parents: [] }), 'route-accepted')).toMatchObject({ verdict: 'fail', detail: expect.stringContaining('no Gateway has reported') });
    const refused = route({ parents: [{ parentRef: { name: 'public' }, controllerName: 'x', conditions: [{ type: 'Accepted', status: 'False', reason: 'NotAllowedByListeners', message: 'no listener allows namespace shop', observedGeneration: 2 }] }] });
    expect(verdict(refused, 'route-accepted')).toMatchObject({ verdict: 'fail', detail: expect.stringContaining('Accepted=False, NotAllowedByListeners: no listener allows namespace shop') });
    const unresolved = route({ parents: [{ parentRef: { name: 'public' }, conditions: [{ type: 'Accepted', status: 'True', observedGeneration: 2 }, { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', observedGeneration: 2 }] }] });
    expect(verdict(unresolved, 'route-accepted')).toMatchObject({ verdict: 'fail', detail: expect.stringContaining('ResolvedRefs=False, BackendNotFound') });
  });

  it('passes a route of ours mid-smoke-test: our backendRef at 0 and our header-match rule, marked as ours', () => {
    const smoke = route({
      rules: [
        { backendRefs: [{ name: 'checkout', port: 80, weight: 1 }, { kind: 'Service', name: 'checkout-canary', port: 80, weight: 0 }] },
        { name: 'canary-cli-smoke-test', matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'X-Canary', value: 'smoke' }] }], backendRefs: [{ kind: 'Service', name: 'checkout-canary', port: 80, weight: 1 }] },
      ],
    });
    smoke.metadata = { ...smoke.metadata, labels: { 'canary-cli.dev/target': 'checkout' }, annotations: { 'canary-cli.dev/rollout-id': 'r1', 'canary-cli.dev/stop': '', 'canary-cli.dev/canary-backend-ref': 'checkout-canary', 'canary-cli.dev/header-rule': 'canary-cli-smoke-test' } };
    expect(httpRouteFindings(smoke, names).map((f) => f.verdict)).toEqual(['ok', 'ok']);
  });

  it('warns when the Gateway accepted an older generation of the route', () => {
    const stale = route({ generation: 3 });
    expect(verdict(stale, 'route-accepted')).toMatchObject({ verdict: 'warn', detail: expect.stringContaining('generation 2 of HTTPRoute shop/checkout, not the current 3') });
  });
});
