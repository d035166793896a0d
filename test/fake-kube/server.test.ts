// The fake API server driven the way the CLI drives a cluster: through @kubernetes/client-node 1.x
// over loopback HTTP. Each test pins a piece of kube-apiserver behaviour the CLI relies on.

import {
  ApiException,
  AppsV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seedCheckout } from '../support/fake-kube/seed.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/server.js';

interface StatusBody {
  kind: string;
  apiVersion: string;
  status: string;
  reason: string;
  code: number;
  message: string;
  details?: { name?: string; group?: string; kind?: string; retryAfterSeconds?: number };
}

interface Failure {
  code: number;
  status: StatusBody;
  headers: Record<string, string>;
}

/** The Status a call failed with; fails the test when the call succeeded. */
async function failure(call: Promise<unknown>): Promise<Failure> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body: unknown = err.body;
    const status = (typeof body === 'string' ? JSON.parse(body) : body) as StatusBody;
    return { code: err.code, status, headers: err.headers };
  }
  throw new Error('expected the call to fail, and it succeeded');
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

describe('fake Kubernetes API server through @kubernetes/client-node', () => {
  let fake: FakeKube;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let net: NetworkingV1Api;

  beforeEach(async () => {
    fake = await startFakeKube({ controllerDelayMs: 20 });
    seedCheckout(fake, { namespace: 'shop', name: 'checkout' });
    kc = new KubeConfig();
    kc.loadFromFile(fake.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    net = kc.makeApiClient(NetworkingV1Api);
  });

  afterEach(async () => {
    await fake.stop();
  });

  const recordMap = (name: string, labels: Record<string, string>): V1ConfigMap => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, labels },
    data: { phase: 'progressing' },
  });

  it('creates, reads and lists by label and field selectors, sending the kubeconfig token', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: 'shop',
      body: recordMap('canary-checkout', { 'app.kubernetes.io/managed-by': 'canary', target: 'checkout' }),
    });
    await core.createNamespacedConfigMap({ namespace: 'shop', body: recordMap('canary-cart', { 'app.kubernetes.io/managed-by': 'canary', target: 'cart' }) });
    await core.createNamespacedConfigMap({ namespace: 'shop', body: recordMap('unrelated', { team: 'payments' }) });

    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.namespace).toBe('shop');
    const read = await core.readNamespacedConfigMap({ name: 'canary-checkout', namespace: 'shop' });
    expect(read.data?.['phase']).toBe('progressing');
    expect(read.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);

    const names = async (labelSelector?: string, fieldSelector?: string): Promise<string[]> =>
      (await core.listNamespacedConfigMap({ namespace: 'shop', labelSelector, fieldSelector })).items.map((i) => i.metadata?.name ?? '');
    expect(await names('app.kubernetes.io/managed-by=canary')).toEqual(['canary-cart', 'canary-checkout']);
    expect(await names('app.kubernetes.io/managed-by=canary,target!=cart')).toEqual(['canary-checkout']);
    expect(await names('target in (cart,shipping)')).toEqual(['canary-cart']);
    expect(await names('team')).toEqual(['unrelated']);
    expect(await names('!team')).toEqual(['canary-cart', 'canary-checkout']);
    expect(await names(undefined, 'metadata.name=canary-cart')).toEqual(['canary-cart']);
    expect(fake.requests.every((r) => r.credentials === 'valid')).toBe(true);
  });

  it('answers 409 AlreadyExists for a second create of the same name', async () => {
    await core.createNamespacedConfigMap({ namespace: 'shop', body: recordMap('canary-checkout', {}) });
    const err = await failure(core.createNamespacedConfigMap({ namespace: 'shop', body: recordMap('canary-checkout', {}) }));
    expect(err.code).toBe(409);
    expect(err.status).toMatchObject({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'AlreadyExists',
      message: 'configmaps "canary-checkout" already exists',
      details: { name: 'canary-checkout', kind: 'configmaps' },
    });
  });

  it('refuses a replace carrying a stale resourceVersion with 409 Conflict and keeps the newer write', async () => {
    const first = await core.createNamespacedConfigMap({ namespace: 'shop', body: recordMap('canary-checkout', {}) });
    const stale = structuredClone(first);
    const fresh = await core.replaceNamespacedConfigMap({
      name: 'canary-checkout',
      namespace: 'shop',
      body: { ...first, data: { phase: 'step-2' } },
    });
    expect(Number(fresh.metadata?.resourceVersion)).toBeGreaterThan(Number(first.metadata?.resourceVersion));

    const err = await failure(
      core.replaceNamespacedConfigMap({ name: 'canary-checkout', namespace: 'shop', body: { ...stale, data: { phase: 'stale' } } }),
    );
    expect(err.code).toBe(409);
    expect(err.status.reason).toBe('Conflict');
    expect(err.status.message).toBe(
      'Operation cannot be fulfilled on configmaps "canary-checkout": the object has been modified; please apply your changes to the latest version and try again',
    );
    expect(fake.get('ConfigMap', 'shop', 'canary-checkout')?.['data']).toEqual({ phase: 'step-2' });

    const missing = await failure(core.replaceNamespacedConfigMap({ name: 'nope', namespace: 'shop', body: recordMap('nope', {}) }));
    expect(missing.code).toBe(404);
  });

  it('applies a JSON merge patch of one annotation and leaves the rest of the Ingress alone', async () => {
    const before = fake.get('Ingress', 'shop', 'checkout');
    const patched = await net.patchNamespacedIngress(
      { name: 'checkout', namespace: 'shop', body: { metadata: { annotations: { 'nginx.ingress.kubernetes.io/canary-weight': '25' } } } },
      mergePatch,
    );
    expect(patched.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBe('25');
    const after = fake.get('Ingress', 'shop', 'checkout');
    expect(after?.['spec']).toEqual(before?.['spec']);
    expect(after?.metadata?.generation).toBe(before?.metadata?.generation);
    const write = fake.writes().at(-1);
    expect(write?.method).toBe('PATCH');
    expect(write?.contentType).toBe('application/merge-patch+json');
    expect(write?.body).toEqual({ metadata: { annotations: { 'nginx.ingress.kubernetes.io/canary-weight': '25' } } });

    // null removes a key (RFC 7386).
    await net.patchNamespacedIngress(
      { name: 'checkout', namespace: 'shop', body: { metadata: { annotations: { 'nginx.ingress.kubernetes.io/canary-weight': null } } } },
      mergePatch,
    );
    expect(fake.get('Ingress', 'shop', 'checkout')?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBeUndefined();
  });

  it('treats metadata.resourceVersion in a patch as a precondition', async () => {
    const current = fake.get('Ingress', 'shop', 'checkout');
    const rv = current?.metadata?.resourceVersion ?? '';
    await net.patchNamespacedIngress({ name: 'checkout', namespace: 'shop', body: { metadata: { resourceVersion: rv, annotations: { a: '1' } } } }, mergePatch);
    const err = await failure(
      net.patchNamespacedIngress({ name: 'checkout', namespace: 'shop', body: { metadata: { resourceVersion: rv, annotations: { a: '2' } } } }, mergePatch),
    );
    expect(err.code).toBe(409);
    expect(err.status.message).toContain('Operation cannot be fulfilled on ingresses.networking.k8s.io "checkout"');
    expect(fake.get('Ingress', 'shop', 'checkout')?.metadata?.annotations?.['a']).toBe('1');
  });

  it('applies a JSON patch, and a failing test operation changes nothing', async () => {
    await apps.patchNamespacedDeployment(
      { name: 'checkout-canary', namespace: 'shop', body: [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'registry.example.com/shop/checkout:2.0.0' }] },
      jsonPatch,
    );
    const deployment = fake.get('Deployment', 'shop', 'checkout-canary');
    expect(JSON.stringify(deployment?.['spec'])).toContain('checkout:2.0.0');
    const err = await failure(
      apps.patchNamespacedDeployment(
        { name: 'checkout-canary', namespace: 'shop', body: [
          { op: 'test', path: '/metadata/resourceVersion', value: '1' },
          { op: 'replace', path: '/spec/replicas', value: 5 },
        ] },
        jsonPatch,
      ),
    );
    expect(err.code).toBe(422);
    expect(fake.get('Deployment', 'shop', 'checkout-canary')?.['spec']).toMatchObject({ replicas: 0 });
  });

  it('deletes, then answers 404 NotFound with the real message', async () => {
    await core.createNamespacedConfigMap({ namespace: 'shop', body: recordMap('canary-checkout', {}) });
    await core.deleteNamespacedConfigMap({ name: 'canary-checkout', namespace: 'shop' });
    expect(fake.get('ConfigMap', 'shop', 'canary-checkout')).toBeUndefined();
    const read = await failure(core.readNamespacedConfigMap({ name: 'canary-checkout', namespace: 'shop' }));
    expect(read.code).toBe(404);
    expect(read.status).toMatchObject({ reason: 'NotFound', message: 'configmaps "canary-checkout" not found' });
    const again = await failure(core.deleteNamespacedConfigMap({ name: 'canary-checkout', namespace: 'shop' }));
    expect(again.code).toBe(404);
    const ingress = await failure(net.readNamespacedIngress({ name: 'checkout-canary', namespace: 'shop' }));
    expect(ingress.status.message).toBe('ingresses.networking.k8s.io "checkout-canary" not found');
  });

  it('answers 403 Forbidden, worded like RBAC, for a verb outside the allow-list, and SSAR agrees', async () => {
    fake.allow([
      { verb: 'get', group: 'networking.k8s.io', resource: 'ingresses', namespace: 'shop' },
      { verb: 'create', group: 'networking.k8s.io', resource: 'ingresses', namespace: 'shop' },
    ]);
    const authz = kc.makeApiClient(AuthorizationV1Api);
    const review = async (verb: string, resource: string, group: string): Promise<boolean | undefined> =>
      (await authz.createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { namespace: 'shop', verb, group, resource } } },
      })).status?.allowed;

    expect(await review('get', 'ingresses', 'networking.k8s.io')).toBe(true);
    expect(await review('patch', 'ingresses', 'networking.k8s.io')).toBe(false);
    expect(await review('update', 'configmaps', '')).toBe(false);

    await net.readNamespacedIngress({ name: 'checkout', namespace: 'shop' });
    const err = await failure(
      net.patchNamespacedIngress({ name: 'checkout', namespace: 'shop', body: { metadata: { annotations: { x: 'y' } } } }, mergePatch),
    );
    expect(err.code).toBe(403);
    expect(err.status.reason).toBe('Forbidden');
    expect(err.status.message).toBe(
      'ingresses.networking.k8s.io "checkout" is forbidden: User "system:serviceaccount:ci:canary" cannot patch resource ' +
        '"ingresses" in API group "networking.k8s.io" in the namespace "shop"',
    );
    const list = await failure(core.listNamespacedConfigMap({ namespace: 'shop' }));
    expect(list.status.message).toBe(
      'configmaps is forbidden: User "system:serviceaccount:ci:canary" cannot list resource "configmaps" in API group "" in the namespace "shop"',
    );
    expect(fake.get('Ingress', 'shop', 'checkout')?.metadata?.annotations?.['x']).toBeUndefined();

    fake.allowAll();
    fake.deny({ verb: 'patch', group: 'apps', resource: 'deployments/scale' });
    expect(await review('patch', 'deployments', 'apps')).toBe(true);
    const scale = await failure(
      apps.patchNamespacedDeploymentScale({ name: 'checkout-canary', namespace: 'shop', body: { spec: { replicas: 2 } } }, mergePatch),
    );
    expect(scale.status.message).toContain('cannot patch resource "deployments/scale" in API group "apps"');
  });

  it('rejects a canary-weight annotation that is not an integer 0..100 with 422 Invalid', async () => {
    for (const weight of ['150', '-1', '12.5', 'ten']) {
      const err = await failure(
        net.patchNamespacedIngress(
          { name: 'checkout', namespace: 'shop', body: { metadata: { annotations: { 'nginx.ingress.kubernetes.io/canary-weight': weight } } } },
          mergePatch,
        ),
      );
      expect(err.code).toBe(422);
      expect(err.status.reason).toBe('Invalid');
      expect(err.status.message).toContain(`Ingress.networking.k8s.io "checkout" is invalid: metadata.annotations[nginx.ingress.kubernetes.io/canary-weight]: Invalid value: "${weight}"`);
    }
    const noName = await failure(core.createNamespacedConfigMap({ namespace: 'shop', body: { data: {} } }));
    expect(noName.status.message).toBe('ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required');
    const badName = await failure(core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'Checkout_Record' } } }));
    expect(badName.code).toBe(422);
    expect(badName.status.message).toContain('a lowercase RFC 1123 subdomain');
  });

  it('serves an injected 503 once, then the real answer', async () => {
    const fault = fake.injectFault({ method: 'GET', pathPattern: '/ingresses/checkout', kind: 'status', code: 503 });
    const err = await failure(net.readNamespacedIngress({ name: 'checkout', namespace: 'shop' }));
    expect(err.code).toBe(503);
    expect(err.status.reason).toBe('ServiceUnavailable');
    const ok = await net.readNamespacedIngress({ name: 'checkout', namespace: 'shop' });
    expect(ok.metadata?.name).toBe('checkout');
    expect(fault.hits).toBe(1);
    expect(fake.requests.map((r) => [r.status, r.fault])).toEqual([[503, 'status'], [200, undefined]]);
  });

  it('answers 429 with a Retry-After header', async () => {
    fake.injectFault({ method: 'PATCH', kind: '429', retryAfterSeconds: 7, times: 2 });
    const body = { metadata: { annotations: { 'nginx.ingress.kubernetes.io/canary-weight': '10' } } };
    for (let i = 0; i < 2; i++) {
      const err = await failure(net.patchNamespacedIngress({ name: 'checkout', namespace: 'shop', body }, mergePatch));
      expect(err.code).toBe(429);
      expect(err.headers['retry-after']).toBe('7');
      expect(err.status).toMatchObject({ reason: 'TooManyRequests', details: { retryAfterSeconds: 7 } });
    }
    expect(fake.get('Ingress', 'shop', 'checkout')?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBeUndefined();
    await net.patchNamespacedIngress({ name: 'checkout', namespace: 'shop', body }, mergePatch);
    expect(fake.get('Ingress', 'shop', 'checkout')?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBe('10');
  });

  it('resets the connection without applying the write', async () => {
    fake.injectFault({ method: 'PATCH', pathPattern: /\/ingresses\/checkout$/, kind: 'reset' });
    const body = { metadata: { annotations: { 'nginx.ingress.kubernetes.io/canary-weight': '50' } } };
    const outcome = await net.patchNamespacedIngress({ name: 'checkout', namespace: 'shop', body }, mergePatch).then(
      () => 'succeeded',
      (err: unknown) => (err instanceof ApiException ? `http ${err.code}` : String(err)),
    );
    expect(outcome).toMatch(/ECONNRESET|socket hang up/);
    expect(fake.get('Ingress', 'shop', 'checkout')?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBeUndefined();
    await net.patchNamespacedIngress({ name: 'checkout', namespace: 'shop', body }, mergePatch);
    expect(fake.get('Ingress', 'shop', 'checkout')?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBe('50');
  });

  it('delays a response by the injected latency and still answers', async () => {
    const fault = fake.injectFault({ kind: 'latency', ms: 30, pathPattern: '/deployments/checkout' });
    const read = await apps.readNamespacedDeployment({ name: 'checkout', namespace: 'shop' });
    expect(read.metadata?.name).toBe('checkout');
    expect(fault.hits).toBe(1);
    expect(fake.requests[0]?.fault).toBe('latency');
  });

  it('moves a Deployment status to the new generation after a spec change, like the controller', async () => {
    const image = 'registry.example.com/shop/checkout:2.0.0';
    const patched = await apps.patchNamespacedDeployment(
      { name: 'checkout-canary', namespace: 'shop', body: { spec: { replicas: 2, template: { spec: { containers: [{ name: 'checkout', image }] } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    expect(patched.metadata?.generation).toBe(2);
    // Strategic merge keeps the container's other fields (ports) while changing its image.
    expect(patched.spec?.template.spec?.containers[0]?.ports?.[0]?.containerPort).toBe(8080);
    // The controller has not observed the change yet.
    expect(patched.status?.observedGeneration).toBe(1);
    expect(patched.status?.availableReplicas).toBeUndefined();

    await fake.settled();
    const settled = await apps.readNamespacedDeployment({ name: 'checkout-canary', namespace: 'shop' });
    expect(settled.status).toMatchObject({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 });

    fake.setDeploymentBehavior('shop', 'checkout-canary', 'fail');
    await apps.patchNamespacedDeploymentScale({ name: 'checkout-canary', namespace: 'shop', body: { spec: { replicas: 3 } } }, mergePatch);
    await fake.settled();
    const failed = await apps.readNamespacedDeployment({ name: 'checkout-canary', namespace: 'shop' });
    expect(failed.metadata?.generation).toBe(3);
    expect(failed.status?.observedGeneration).toBe(3);
    expect(failed.status?.availableReplicas).toBeUndefined();
    expect(failed.status?.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({
      status: 'False',
      reason: 'ProgressDeadlineExceeded',
    });
  });

  it('ignores status in writes to the main resource, as the status subresource owns it', async () => {
    const current = await apps.readNamespacedDeployment({ name: 'checkout', namespace: 'shop' });
    const replaced = await apps.replaceNamespacedDeployment({
      name: 'checkout',
      namespace: 'shop',
      body: { ...current, status: { availableReplicas: 99, observedGeneration: 42 } },
    });
    expect(replaced.status?.availableReplicas).toBe(3);
    expect(replaced.metadata?.resourceVersion).toBe(current.metadata?.resourceVersion);
  });

  it('accepts Lease times only as MicroTime with six fractional digits, like the real server', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const spec = { holderIdentity: 'ci-run-1', leaseDurationSeconds: 30 };
    const err = await failure(
      leases.createNamespacedLease({ namespace: 'shop', body: { metadata: { name: 'canary-checkout' }, spec: { ...spec, renewTime: new Date() } } }),
    );
    expect(err.code).toBe(400);
    expect(err.status.reason).toBe('BadRequest');
    expect(err.status.message).toContain('Lease in version "v1" cannot be handled as a Lease');
    const micro = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    const created = await leases.createNamespacedLease({
      namespace: 'shop',
      body: { metadata: { name: 'canary-checkout' }, spec: { ...spec, renewTime: micro as unknown as Date, acquireTime: micro as unknown as Date } },
    });
    expect(created.spec?.holderIdentity).toBe('ci-run-1');
  });

  it('creates Events and lists them by involved object', async () => {
    const involved = { kind: 'Deployment', apiVersion: 'apps/v1', name: 'checkout', namespace: 'shop' };
    await core.createNamespacedEvent({
      namespace: 'shop',
      body: { metadata: { generateName: 'checkout.' }, involvedObject: involved, reason: 'CanaryStep', message: 'weight 10%', type: 'Normal' },
    });
    await core.createNamespacedEvent({
      namespace: 'shop',
      body: { metadata: { name: 'other.1' }, involvedObject: { ...involved, name: 'cart' }, reason: 'CanaryStep', message: 'x', type: 'Normal' },
    });
    const events = await core.listNamespacedEvent({ namespace: 'shop', fieldSelector: 'involvedObject.name=checkout' });
    expect(events.items.map((e) => [e.reason, e.message])).toEqual([['CanaryStep', 'weight 10%']]);
    expect(events.items[0]?.metadata.name).toMatch(/^checkout\.[a-z0-9]{5}$/);
  });

  it('serves discovery that names the kinds, scopes and verbs', async () => {
    const res = await fetch(`${fake.url}/apis/networking.k8s.io/v1`, { headers: { Authorization: `Bearer ${fake.token}` } });
    const doc = (await res.json()) as { kind: string; resources: Array<{ name: string; kind: string; namespaced: boolean; verbs: string[] }> };
    expect(doc.kind).toBe('APIResourceList');
    expect(doc.resources.find((r) => r.name === 'ingresses')).toMatchObject({ kind: 'Ingress', namespaced: true });
    expect(doc.resources.find((r) => r.name === 'ingresses')?.verbs).toEqual(expect.arrayContaining(['get', 'list', 'create', 'patch', 'delete']));
    const version = await fetch(`${fake.url}/version`);
    expect(((await version.json()) as { major: string }).major).toBe('1');
  });

  it('streams watch events from a resourceVersion', async () => {
    const list = await core.listNamespacedConfigMap({ namespace: 'shop' });
    const seen: string[] = [];
    const watch = new Watch(kc);
    let done!: () => void;
    const twoEvents = new Promise<void>((resolve) => (done = resolve));
    const request = await watch.watch(
      '/api/v1/namespaces/shop/configmaps',
      { resourceVersion: list.metadata?.resourceVersion },
      (type: string, obj: V1ConfigMap) => {
        seen.push(`${type} ${obj.metadata?.name ?? ''}`);
        if (seen.length === 2) done();
      },
      () => undefined,
    );
    await core.createNamespacedConfigMap({ namespace: 'shop', body: recordMap('canary-checkout', {}) });
    await core.deleteNamespacedConfigMap({ name: 'canary-checkout', namespace: 'shop' });
    await twoEvents;
    request.abort();
    expect(seen).toEqual(['ADDED canary-checkout', 'DELETED canary-checkout']);
  });

  it('answers 401 to a wrong token', async () => {
    const res = await fetch(`${fake.url}/api/v1/namespaces/shop/configmaps`, { headers: { Authorization: 'Bearer wrong' } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as StatusBody).reason).toBe('Unauthorized');
  });
});
