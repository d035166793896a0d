// The ingress-nginx router against the fake API server over HTTP: what it creates, what it
// refuses, and that the stable Ingress and foreign Ingresses are never written.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { connect } from '../../src/k8s/connection.js';
import {
  findOwnedCanaryIngress,
  findOwnedCanaryIngresses,
  IngressRouter,
  WEIGHT_ANNOTATION,
} from '../../src/k8s/ingress-router.js';
import { targetNames } from '../../src/policy/policy.js';
import { StopRequestedError } from '../../src/rollout/ports.js';
import { seedCheckout } from '../support/fake-kube/seed.js';
import { startFakeKube, type FakeKube, type KubeObject } from '../support/fake-kube/server.js';
import { waitFor } from '../support/wait.js';

const noSleep = async (): Promise<void> => undefined;

const names = targetNames('checkout', {});

let fake: FakeKube;

beforeEach(async () => {
  fake = await startFakeKube();
  seedCheckout(fake);
});
afterEach(async () => {
  await fake.stop();
});

function router(extra: Partial<ConstructorParameters<typeof IngressRouter>[0]> = {}): IngressRouter {
  const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
  return new IngressRouter({ kc, namespace: 'shop', names, rolloutId: 'checkout-20250101T000000Z', target: 'checkout', retry: { sleep: noSleep }, ...extra });
}

const ingressWrites = () => fake.writes().filter((r) => r.path.includes('/ingresses'));
type Spec = { rules?: { host?: string; http?: { paths: { path?: string; backend: { service?: { name: string; port?: { number?: number } } } }[] } }[]; tls?: unknown; ingressClassName?: string };
const specOf = (o: KubeObject | undefined): Spec => (o?.['spec'] ?? {}) as Spec;

describe('IngressRouter header routing', () => {
  it('sends header-routed smoke tests to the canary only from the first raise, in the same fenced patch as the weight', async () => {
    const r = router({ headerRouting: { header: 'X-Canary', value: 'always' } });
    await r.prepare();
    const annotations = () => fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations ?? {};
    expect(annotations()['nginx.ingress.kubernetes.io/canary-by-header']).toBeUndefined();
    fake.clearRequests();
    await r.setWeight(10);
    expect(annotations()).toMatchObject({ [WEIGHT_ANNOTATION]: '10', 'nginx.ingress.kubernetes.io/canary-by-header': 'X-Canary', 'nginx.ingress.kubernetes.io/canary-by-header-value': 'always' });
    expect(ingressWrites()).toHaveLength(1);
    await r.setWeight(0);
    expect(annotations()['nginx.ingress.kubernetes.io/canary-by-header']).toBeUndefined();
  });

  it('routeByHeader (the smoke phase) turns header routing on at 0% in one fenced patch; the raise keeps it; a stop removes it; a stopped route refuses it', async () => {
    const r = router({ headerRouting: { header: 'X-Canary', value: 'always' } });
    await r.prepare();
    const annotations = () => fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations ?? {};
    fake.clearRequests();
    await r.routeByHeader();
    expect(annotations()).toMatchObject({ [WEIGHT_ANNOTATION]: '0', 'nginx.ingress.kubernetes.io/canary-by-header': 'X-Canary', 'nginx.ingress.kubernetes.io/canary-by-header-value': 'always' });
    const writes = ingressWrites();
    expect(writes).toHaveLength(1);
    const ops = (fake.requests.find((q) => q.method === 'PATCH')?.body ?? []) as { op: string; path: string }[];
    expect(ops.filter((o) => o.op === 'test').map((o) => o.path)).toContain('/metadata/annotations/canary-cli.dev~1rollout-id');
    await r.setWeight(10);
    expect(annotations()).toMatchObject({ [WEIGHT_ANNOTATION]: '10', 'nginx.ingress.kubernetes.io/canary-by-header': 'X-Canary' });
    await r.stop('stopped by test');
    expect(annotations()['nginx.ingress.kubernetes.io/canary-by-header']).toBeUndefined();
    await expect(r.routeByHeader()).rejects.toThrow(/was stopped/);
    expect(annotations()['nginx.ingress.kubernetes.io/canary-by-header']).toBeUndefined();
  });
});

describe('IngressRouter.prepare', () => {
  it('copies only the stable-service routes to the canary Service, keeping TLS and the ingress class', async () => {
    const stable = fake.get('Ingress', 'shop', 'checkout');
    // A second path to another service must not be copied.
    const withAdmin = structuredClone(stable) as KubeObject;
    specOf(withAdmin).rules?.[0]?.http?.paths.push({ path: '/admin', pathType: 'Prefix', backend: { service: { name: 'admin', port: { number: 8080 } } } } as never);
    withAdmin.metadata = { ...withAdmin.metadata, annotations: { 'kubernetes.io/ingress.class': 'nginx' } };
    fake.put(withAdmin);
    const before = fake.get('Ingress', 'shop', 'checkout');

    await router({ headerRouting: { header: 'X-Canary', value: 'always' } }).prepare();

    const canary = fake.get('Ingress', 'shop', 'checkout-canary');
    expect(canary?.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'canary-cli', 'canary-cli.dev/target': 'checkout' });
    expect(canary?.metadata?.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/canary': 'true',
      [WEIGHT_ANNOTATION]: '0',
      'kubernetes.io/ingress.class': 'nginx',
      'canary-cli.dev/rollout-id': 'checkout-20250101T000000Z',
    });
    // At 0% the canary may have no pods yet: header routing arrives with the first raise.
    expect(canary?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-by-header']).toBeUndefined();
    const spec = specOf(canary);
    expect(spec.ingressClassName).toBe('nginx');
    expect(spec.tls).toEqual([{ hosts: ['shop.example.com'], secretName: 'checkout-tls' }]);
    expect(spec.rules).toHaveLength(1);
    expect(spec.rules?.[0]?.host).toBe('shop.example.com');
    expect(spec.rules?.[0]?.http?.paths.map((p) => [p.path, p.backend.service?.name, p.backend.service?.port?.number])).toEqual([['/', 'checkout-canary', 80]]);
    // The stable Ingress is untouched.
    expect(fake.get('Ingress', 'shop', 'checkout')).toEqual(before);
    expect(ingressWrites().every((w) => !w.path.endsWith('/ingresses/checkout'))).toBe(true);
    expect(await router().getWeight()).toBe(0);
  });

  it('adopts its own canary Ingress from an earlier rollout: rules refreshed, weight back to 0', async () => {
    await router().prepare();
    await router().setWeight(50);
    fake.remove('Ingress', 'shop', 'checkout');
    seedCheckout(fake, { host: 'new.example.com' });

    await router({ rolloutId: 'second' }).prepare();

    const canary = fake.get('Ingress', 'shop', 'checkout-canary');
    expect(canary?.metadata?.annotations?.[WEIGHT_ANNOTATION]).toBe('0');
    expect(canary?.metadata?.annotations?.['canary-cli.dev/rollout-id']).toBe('second');
    expect(specOf(canary).rules?.[0]?.host).toBe('new.example.com');
    expect(ingressWrites().some((w) => w.method === 'PUT' && w.path.endsWith('/ingresses/checkout-canary'))).toBe(true);
  });

  it('refuses, writing nothing, when another canary Ingress already serves the same host and path', async () => {
    fake.put({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'checkout-flagger', namespace: 'shop', annotations: { 'nginx.ingress.kubernetes.io/canary': 'true', [WEIGHT_ANNOTATION]: '20' } },
      spec: { ingressClassName: 'nginx', rules: [{ host: 'shop.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'checkout-primary', port: { number: 80 } } } }] } }] },
    });
    fake.clearRequests();

    const err = await router().prepare().catch((e: unknown) => e);

    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).kind).toBe('invalid-input');
    expect((err as CanaryError).message).toContain('shop/checkout-flagger');
    expect((err as CanaryError).message).toContain('shop.example.com/');
    expect(fake.writes()).toEqual([]);
    expect(fake.get('Ingress', 'shop', 'checkout-canary')).toBeUndefined();
    expect(fake.get('Ingress', 'shop', 'checkout-flagger')?.metadata?.annotations?.[WEIGHT_ANNOTATION]).toBe('20');
  });

  it('refuses, writing nothing, when an Ingress with the canary name exists without our label', async () => {
    const stable = fake.get('Ingress', 'shop', 'checkout') as KubeObject;
    fake.put({ ...stable, metadata: { name: 'checkout-canary', namespace: 'shop', labels: { team: 'payments' } } });
    const before = fake.get('Ingress', 'shop', 'checkout-canary');
    fake.clearRequests();

    const err = await router().prepare().catch((e: unknown) => e);

    expect((err as CanaryError).kind).toBe('invalid-input');
    expect((err as CanaryError).message).toMatch(/Ingress shop\/checkout-canary already exists and was not created by canary-cli/);
    expect((err as CanaryError).message).toContain('spec.target.canaryIngress');
    expect(fake.writes()).toEqual([]);
    expect(fake.get('Ingress', 'shop', 'checkout-canary')).toEqual(before);
    // Nor will it change the weight of an Ingress it does not own.
    await expect(router().setWeight(10)).rejects.toThrow(/not managed by canary-cli/);
    expect(await router().getWeight()).toBeNull();
  });

  it('says which Service it looked for when the stable Ingress has no route to it', async () => {
    const err = await router({ names: targetNames('checkout', { stableService: 'checkout-v1' }) }).prepare().catch((e: unknown) => e);
    expect((err as CanaryError).message).toMatch(/no path whose backend is Service checkout-v1/);
    expect(fake.writes()).toEqual([]);
  });
});

describe('IngressRouter weights', () => {
  it('raises the weight with one JSON Patch whose test ops fence on the rollout id and the stop marker', async () => {
    const r = router();
    await r.prepare();
    fake.clearRequests();

    await r.setWeight(25);

    const patches = fake.writes();
    expect(patches).toHaveLength(1);
    const patch = patches[0];
    expect(patch?.method).toBe('PATCH');
    expect(patch?.path).toBe('/apis/networking.k8s.io/v1/namespaces/shop/ingresses/checkout-canary');
    expect(patch?.contentType).toBe('application/json-patch+json');
    // `/` in an annotation key is `~1` in a JSON Pointer.
    expect(patch?.body).toEqual([
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1rollout-id', value: 'checkout-20250101T000000Z' },
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1stop', value: '' },
      { op: 'add', path: '/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight', value: '25' },
    ]);
    expect(await r.getWeight()).toBe(25);
  });

  it('a raise in flight when a stop lands fails its test op (422) and throws StopRequestedError; the weight stays 0', async () => {
    const r = router();
    await r.prepare();
    await r.setWeight(10);
    // Hold the raise's PATCH; the stop lands while it waits.
    fake.injectFault({ kind: 'latency', ms: 300, method: 'PATCH', pathPattern: '/checkout-canary' });
    const raise = r.setWeight(25).then(
      () => null,
      (err: unknown) => err,
    );
    await waitFor('the delayed PATCH to reach the API server', () => fake.requests.some((q) => q.method === 'PATCH' && q.fault === 'latency'));
    await router({ rolloutId: 'irrelevant' }).stop('rolled back by alice');
    const err = await raise;
    expect(err).toBeInstanceOf(StopRequestedError);
    expect((err as StopRequestedError).by).toBe('rolled back by alice');
    const held = fake.requests.find((q) => q.method === 'PATCH' && q.fault === 'latency');
    expect(held?.status).toBe(422);
    const annotations = fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations ?? {};
    expect(annotations[WEIGHT_ANNOTATION]).toBe('0');
    expect(annotations['canary-cli.dev/stop']).toBe('rolled back by alice');
    // Later raises are refused before any write.
    fake.clearRequests();
    await expect(r.setWeight(50)).rejects.toBeInstanceOf(StopRequestedError);
    expect(fake.writes()).toEqual([]);
  });

  it('a raise by a rollout whose route another rollout has prepared since is refused', async () => {
    await router({ rolloutId: 'checkout-20250101T000000Z' }).prepare();
    await router({ rolloutId: 'checkout-20250202T000000Z' }).prepare();
    await expect(router({ rolloutId: 'checkout-20250101T000000Z' }).setWeight(25)).rejects.toThrow('it now belongs to rollout checkout-20250202T000000Z');
    expect(fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations?.[WEIGHT_ANNOTATION]).toBe('0');
  });

  it('inspect re-reads ours and reports a canary Ingress that is not ours but sends traffic to the canary Service', async () => {
    const r = router();
    await r.prepare();
    await r.setWeight(10);
    const ours = fake.get('Ingress', 'shop', 'checkout-canary') as KubeObject;
    fake.put({
      ...ours,
      metadata: { name: 'hand-made-canary', namespace: 'shop', annotations: { 'nginx.ingress.kubernetes.io/canary': 'true', [WEIGHT_ANNOTATION]: '5' } },
    });
    expect(await r.stop('rolled back by alice')).toEqual([
      { name: 'checkout-canary', weight: 10, overrides: [], stoppedBy: null, rolloutId: 'checkout-20250101T000000Z' },
    ]);
    expect(await r.inspect()).toEqual({
      ours: [{ name: 'checkout-canary', weight: 0, overrides: [], stoppedBy: 'rolled back by alice', rolloutId: 'checkout-20250101T000000Z' }],
      foreign: [{ name: 'hand-made-canary', weight: 5, overrides: [] }],
    });
    // Never written.
    expect(fake.writes().some((w) => w.path.endsWith('/hand-made-canary'))).toBe(false);
  });

  it('getWeight is null when there is no canary Ingress of ours', async () => {
    expect(await router().getWeight()).toBeNull();
  });

  it('rollback without a record: finds our canary Ingress by label and sets it to 0', async () => {
    const r = router();
    await r.prepare();
    await r.setWeight(50);
    const { kc } = connect({ kubeconfig: fake.kubeconfigPath });

    const found = await findOwnedCanaryIngress(kc, 'shop', 'checkout');
    expect(found).toEqual({ name: 'checkout-canary', weight: 50, overrides: [], stoppedBy: null });
    // What `canary rollback` does first: a router with no rollout id, finding ours by label.
    await router({ rolloutId: '' }).stop('test');

    expect(fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations?.[WEIGHT_ANNOTATION]).toBe('0');
    expect(await findOwnedCanaryIngress(kc, 'shop', 'payments')).toBeNull();
  });

  it('finds every canary Ingress of ours, not only the first by name, and never a foreign one', async () => {
    const r = router();
    await r.prepare();
    await r.setWeight(20);
    const ours = fake.get('Ingress', 'shop', 'checkout-canary') as KubeObject;
    // Left behind by an earlier rollout whose policy named the canary Ingress differently.
    fake.put({ ...structuredClone(ours), metadata: { ...structuredClone(ours.metadata), name: 'checkout-canary-v1', resourceVersion: undefined, annotations: { ...ours.metadata?.annotations, [WEIGHT_ANNOTATION]: '35' } } });
    fake.put({ ...structuredClone(ours), metadata: { name: 'checkout-canary-foreign', namespace: 'shop', annotations: { [WEIGHT_ANNOTATION]: '50' } } });
    const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
    expect(await findOwnedCanaryIngresses(kc, 'shop', 'checkout')).toEqual([
      { name: 'checkout-canary', weight: 20, overrides: [], stoppedBy: null },
      { name: 'checkout-canary-v1', weight: 35, overrides: [], stoppedBy: null },
    ]);
  });
});

// Issue 16 item 5: the fence token is the holder (identity + epoch), not only the rollout id,
// which a --resume shares with the run it replaces.
describe('the fence token of the process driving the rollout', () => {
  it("a --resume claims the route: its predecessor's raise (same rollout id) fails its test op and is refused, unwritten", async () => {
    const original = router({ fenceToken: 'run 1 attempt 1 pid 7 #aaaaaa epoch 0' });
    await original.prepare();
    await original.setWeight(10);
    const resumed = router({ fenceToken: 'run 2 attempt 1 pid 9 #bbbbbb epoch 1' });
    await resumed.claim();
    await resumed.setWeight(25);
    const err = await original.setWeight(50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StopRequestedError);
    expect((err as StopRequestedError).by).toContain('run 2 attempt 1 pid 9 #bbbbbb epoch 1');
    expect(fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations?.[WEIGHT_ANNOTATION]).toBe('25');
    // The promotion's fence check refuses the predecessor too.
    await expect(original.checkFence()).rejects.toBeInstanceOf(StopRequestedError);
    await resumed.checkFence();
  });

  it('a raise in flight when the route is claimed fails its test op (422) and is not applied', async () => {
    const original = router({ fenceToken: 'old epoch 0' });
    await original.prepare();
    await original.setWeight(10);
    // Just before the predecessor's raise is served, the resumed run's claim lands.
    fake.injectFault({ kind: 'before', method: 'PATCH', pathPattern: '/ingresses/checkout-canary', run: () => {
      const ing = fake.get('Ingress', 'shop', 'checkout-canary') as KubeObject;
      fake.put({ ...ing, metadata: { ...ing.metadata, annotations: { ...ing.metadata?.annotations, 'canary-cli.dev/holder': 'new epoch 1' } } });
    } });
    const err = await original.setWeight(25).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StopRequestedError);
    expect(fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations?.[WEIGHT_ANNOTATION]).toBe('10');
  });
});

describe('header and cookie routing at 0%', () => {
  const HEADER = 'nginx.ingress.kubernetes.io/canary-by-header';
  const OVERRIDES = [HEADER, `${HEADER}-value`, `${HEADER}-pattern`, 'nginx.ingress.kubernetes.io/canary-by-cookie'];

  /** Our canary Ingress at `weight`, routed by header and cookie too (smoke tests, or a hand edit). */
  async function routedByHeader(weight: number): Promise<IngressRouter> {
    const r = router({ headerRouting: { header: 'X-Canary', value: 'always' } });
    await r.prepare();
    await r.setWeight(weight);
    const ing = fake.get('Ingress', 'shop', 'checkout-canary') as KubeObject;
    const routing = { [HEADER]: 'X-Canary', [`${HEADER}-value`]: 'always', [`${HEADER}-pattern`]: '^smoke', 'nginx.ingress.kubernetes.io/canary-by-cookie': 'canary' };
    fake.put({ ...ing, metadata: { ...ing.metadata, annotations: { ...ing.metadata?.annotations, ...routing } } });
    fake.clearRequests();
    return r;
  }

  it('setWeight(0) removes canary-by-header, -value, -pattern and canary-by-cookie in the same JSON Patch', async () => {
    const r = await routedByHeader(25);
    await r.setWeight(0);
    const patches = fake.requests.filter((q) => q.method === 'PATCH');
    expect(patches).toHaveLength(1);
    const body = patches[0]?.body as { op: string; path: string }[];
    expect(body.filter((o) => o.op === 'remove').map((o) => o.path)).toEqual(OVERRIDES.map((a) => `/metadata/annotations/${a.replace(/\//g, '~1')}`));
    const annotations = fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations ?? {};
    expect(annotations[WEIGHT_ANNOTATION]).toBe('0');
    for (const a of OVERRIDES) expect(annotations).not.toHaveProperty(a);
  });

  it('a weight above 0 leaves header routing alone', async () => {
    const r = await routedByHeader(10);
    await r.setWeight(25);
    expect(fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations?.[HEADER]).toBe('X-Canary');
  });

  it('rollback of a canary Ingress already at weight 0 but still routed by header strips the routing', async () => {
    await routedByHeader(0);
    const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
    expect((await findOwnedCanaryIngresses(kc, 'shop', 'checkout'))[0]?.overrides).toEqual([HEADER, `${HEADER}-value`, `${HEADER}-pattern`, 'nginx.ingress.kubernetes.io/canary-by-cookie']);
    await router({ rolloutId: '' }).stop('test');
    const annotations = fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations ?? {};
    for (const a of OVERRIDES) expect(annotations).not.toHaveProperty(a);
  });
});
