import { describe, expect, it } from 'vitest';
import { CANARY_ANNOTATION, NAMESPACE, useLiveWorld, TARGET, WEIGHT_ANNOTATION } from '../support/live-harness.js';

// Refusals before the first write: a missing permission, a missing object, a canary Ingress that
// is not ours. Each ends with exit 2, a message naming what is wrong, and nothing changed in the
// cluster (SelfSubjectAccessReviews are questions, not changes).

const world = useLiveWorld();

describe('preflight', () => {
  it('lists a missing permission (verb, resource, namespace) and writes nothing', async () => {
    world.fake.deny({ verb: 'patch', group: 'networking.k8s.io', resource: 'ingresses' });
    const run = await world.deploy().done;
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expect(run.stderr).toContain(`cannot start a rollout of checkout in namespace ${NAMESPACE}; nothing was changed`);
    expect(run.stderr).toContain('  - cannot patch ingresses.networking.k8s.io in namespace shop');
    // Only the denied permission is listed.
    expect(run.stderr.match(/^ {2}- /gm)).toHaveLength(1);
    expect(run.stdout).toBe('');
    expect(world.fake.writes().some((w) => w.path.endsWith('/selfsubjectaccessreviews'))).toBe(true);
    expect(world.changes()).toEqual([]);
    expect(world.canaryIngress()).toBeUndefined();
    expect(world.record()).toBeUndefined();
  });

  it('names a missing canary Service and writes nothing', async () => {
    world.fake.remove('Service', NAMESPACE, 'checkout-canary');
    world.fake.clearRequests();
    const run = await world.deploy().done;
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expect(run.stderr).toContain('Service shop/checkout-canary not found');
    expect(run.stderr).toContain('spec.target.canaryService');
    expect(world.changes()).toEqual([]);
  });
});

describe('a canary Ingress that is not ours', () => {
  it('is refused by name when it serves the same host and path, and nothing is written', async () => {
    world.fake.put({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'checkout-promo', namespace: NAMESPACE, annotations: { [CANARY_ANNOTATION]: 'true', [WEIGHT_ANNOTATION]: '20' } },
      spec: {
        ingressClassName: 'nginx',
        rules: [{ host: 'shop.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'checkout-promo', port: { number: 80 } } } }] } }],
      },
    });
    const foreignBefore = JSON.stringify(world.fake.get('Ingress', NAMESPACE, 'checkout-promo'));
    world.fake.clearRequests();

    const run = await world.deploy().done;
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expect(run.stderr).toContain('canary Ingress shop/checkout-promo already serves shop.example.com/');
    expect(run.stderr).toContain('nothing was changed');
    expect(world.changes()).toEqual([]);
    expect(JSON.stringify(world.fake.get('Ingress', NAMESPACE, 'checkout-promo'))).toBe(foreignBefore);
    expect(world.canaryIngress()).toBeUndefined();
    expect(world.record()).toBeUndefined();
  });

  it('is refused when it already has our canary Ingress name but not our label', async () => {
    world.fake.put({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'checkout-canary', namespace: NAMESPACE, annotations: { [CANARY_ANNOTATION]: 'true', [WEIGHT_ANNOTATION]: '5' } },
      spec: {
        ingressClassName: 'nginx',
        rules: [{ host: 'shop.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'checkout-canary', port: { number: 80 } } } }] } }],
      },
    });
    world.fake.clearRequests();
    const run = await world.deploy().done;
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expect(run.stderr).toContain(`Ingress ${NAMESPACE}/checkout-canary already exists and was not created by canary-cli for ${TARGET}`);
    expect(world.changes()).toEqual([]);
    expect(world.weight()).toBe('5');
  });
});

describe('Prometheus before the first write', () => {
  it('a query Prometheus rejects is listed as a preflight problem (exit 2) and nothing is written', async () => {
    world.prom.setHandler(() => ({ status: 400, json: { status: 'error', errorType: 'bad_data', error: '1:6: parse error: unexpected identifier' } }));
    world.fake.clearRequests();
    const run = await world.deploy().done;
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expect(run.stderr).toContain(`cannot start a rollout of checkout in namespace ${NAMESPACE}; nothing was changed`);
    expect(run.stderr).toMatch(/^ {2}- Prometheus: Prometheus at http:\/\/127\.0\.0\.1:\d+ rejected the query as bad_data \(HTTP 400\): 1:6: parse error/m);
    // The rendered requests query of each side was asked, at the current time.
    const asked = world.prom.queries().map((q) => q.params['query'] ?? '');
    expect(asked[0]).toContain('nginx_ingress_controller_requests');
    expect(world.changes()).toEqual([]);
    expect(world.record()).toBeUndefined();
    expect(world.fake.get('Lease', NAMESPACE, 'checkout-canary')).toBeUndefined();
  });

  it('no request data for stable (a mistyped target, the wrong namespace) is a preflight problem (exit 2) before any traffic change', async () => {
    world.prom.setHandler(() => ({ status: 200, json: { status: 'success', data: { resultType: 'vector', result: [] } } }));
    world.fake.clearRequests();
    const run = await world.deploy().done;
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`cannot start a rollout of checkout in namespace ${NAMESPACE}; nothing was changed`);
    expect(run.stderr).toContain(`Prometheus has no request data for ingress checkout in namespace ${NAMESPACE} at `);
    expect(run.stderr).toContain('query: sum(');
    expect(world.changes()).toEqual([]);
    expect(world.record()).toBeUndefined();
  });

  it('an unreachable Prometheus is exit 5 with nothing written', async () => {
    world.fake.clearRequests();
    const run = await world.deploy(['--prometheus', 'http://127.0.0.1:1']).done;
    expect(run.code, run.stdout + run.stderr).toBe(5);
    expect(run.stderr).toContain('cannot start a rollout of checkout in namespace shop: Prometheus: Prometheus at http://127.0.0.1:1 is unreachable');
    expect(run.stderr).toContain('nothing was changed');
    expect(world.fake.writes()).toEqual([]);
    expect(world.record()).toBeUndefined();
  });
});
