// Faults on the wire (5xx, 429, resets, timeouts, 403) through real client-node calls, and the
// kubeconfig search with its errors.

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, NetworkingV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { CanaryError, messageOf } from '../../src/errors.js';
import { isConflict, isNotFound, KUBE_RETRY_DEFAULTS, statusCode, withKubeRetry } from '../../src/k8s/api-errors.js';
import { connect } from '../../src/k8s/connection.js';
import { IngressRouter } from '../../src/k8s/ingress-router.js';
import { targetNames } from '../../src/policy/policy.js';
import { seedCheckout } from '../support/fake-kube/seed.js';
import { kubeconfigYaml } from '../support/fake-kube/kubeconfig.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/server.js';
import { waitFor } from '../support/wait.js';

let fake: FakeKube;
let sleeps: number[];
const sleep = async (ms: number): Promise<void> => {
  sleeps.push(ms);
};

beforeEach(async () => {
  fake = await startFakeKube();
  seedCheckout(fake);
  sleeps = [];
});
afterEach(async () => {
  await fake.stop();
});

const net = () => connect({ kubeconfig: fake.kubeconfigPath }).kc.makeApiClient(NetworkingV1Api);
const readStable = () => net().readNamespacedIngress({ name: 'checkout', namespace: 'shop' });

describe('withKubeRetry', () => {
  it('retries 503s with exponential backoff', async () => {
    const fault = fake.injectFault({ kind: 'status', code: 503, method: 'GET', pathPattern: '/ingresses/checkout', times: 3 });
    const ing = await withKubeRetry('reading the stable Ingress', readStable, { sleep, baseDelayMs: 100, random: () => 1 });
    expect(ing.metadata?.name).toBe('checkout');
    expect(fault.hits).toBe(3);
    expect(sleeps).toEqual([100, 200, 400]);
  });

  it('waits as long as a 429 Retry-After asks', async () => {
    fake.injectFault({ kind: '429', retryAfterSeconds: 7, pathPattern: '/ingresses/checkout' });
    await withKubeRetry('reading the stable Ingress', readStable, { sleep, baseDelayMs: 100, random: () => 1 });
    expect(sleeps).toEqual([7000]);
  });

  it('retries a reset connection', async () => {
    const fault = fake.injectFault({ kind: 'reset', pathPattern: '/ingresses/checkout' });
    const ing = await withKubeRetry('reading the stable Ingress', readStable, { sleep });
    expect(ing.metadata?.name).toBe('checkout');
    expect(fault.hits).toBe(1);
    expect(fake.requests.filter((r) => r.path.endsWith('/ingresses/checkout')).map((r) => r.status)).toEqual([0, 200]);
  });

  it('treats a call that takes too long as a timeout and retries it', async () => {
    fake.injectFault({ kind: 'latency', ms: 1000, pathPattern: '/ingresses/checkout' });
    const ing = await withKubeRetry('reading the stable Ingress', readStable, { sleep, timeoutMs: 100 });
    expect(ing.metadata?.name).toBe('checkout');
    expect(sleeps).toHaveLength(1);
  });

  it('gives up after the last attempt saying where and what', async () => {
    fake.injectFault({ kind: 'status', code: 503, pathPattern: '/ingresses/checkout', times: Infinity });
    const err = await withKubeRetry('reading the stable Ingress', readStable, { sleep, attempts: 3, server: fake.url }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(5);
    expect((err as CanaryError).message).toBe(
      `Kubernetes API at ${fake.url} unreachable while reading the stable Ingress after 3 attempts: HTTP 503 ServiceUnavailable: the server is currently unable to handle the request`,
    );
    expect(messageOf(err)).not.toContain(fake.token);
  });

  it('reports a refused API server (nothing listening) as unreachable', async () => {
    const url = fake.url;
    const api = net();
    await fake.stop();
    const read = () => api.readNamespacedIngress({ name: 'checkout', namespace: 'shop' });
    const err = await withKubeRetry('reading the stable Ingress', read, { sleep, attempts: 2, server: url }).catch((e: unknown) => e);
    expect((err as CanaryError).kind).toBe('unreachable');
    expect((err as CanaryError).message).toMatch(/ECONNREFUSED/);
    fake = await startFakeKube();
  });

  it('turns 403 into an operator error naming the permission and the manifest, without retrying', async () => {
    fake.deny({ verb: 'get', group: 'networking.k8s.io', resource: 'ingresses' });
    const err = await withKubeRetry('reading the stable Ingress', readStable, { sleep }).catch((e: unknown) => e);
    expect((err as CanaryError).kind).toBe('invalid-input');
    expect((err as CanaryError).message).toBe(
      'Kubernetes API refused reading the stable Ingress: ingresses.networking.k8s.io "checkout" is forbidden: User "system:serviceaccount:ci:canary" cannot get resource "ingresses" in API group "networking.k8s.io" in the namespace "shop"; grant it with examples/rbac.yaml',
    );
    expect(sleeps).toEqual([]);
  });

  it('passes 404 and 409 through untouched for callers', async () => {
    const notFound = await withKubeRetry('x', () => net().readNamespacedIngress({ name: 'nope', namespace: 'shop' }), { sleep }).catch((e: unknown) => e);
    expect(isNotFound(notFound)).toBe(true);
    const core = connect({ kubeconfig: fake.kubeconfigPath }).kc.makeApiClient(CoreV1Api);
    const body = { metadata: { name: 'cm', namespace: 'shop' }, data: {} };
    await core.createNamespacedConfigMap({ namespace: 'shop', body });
    const conflict = await withKubeRetry('x', () => core.createNamespacedConfigMap({ namespace: 'shop', body }), { sleep }).catch((e: unknown) => e);
    expect(isConflict(conflict)).toBe(true);
    expect(statusCode(conflict)).toBe(409);
    expect(sleeps).toEqual([]);
  });

  it('an admission webhook refusing a patch (400) is invalid input in the server\'s words, never the raw ApiException', async () => {
    const webhook = 'admission webhook "validate.nginx.ingress.kubernetes.io" denied the request: annotation canary-weight is invalid';
    const fault = fake.injectFault({ kind: 'status', code: 400, method: 'PATCH', message: webhook });
    const patch = (o: Parameters<typeof setHeaderOptions>[2]) =>
      net().patchNamespacedIngress(
        { name: 'checkout', namespace: 'shop', body: { metadata: { annotations: { x: 'y' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch, o),
      );
    const err = await withKubeRetry('setting the canary weight of Ingress shop/checkout to 10%', patch, { sleep }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(2);
    expect((err as CanaryError).message).toBe(`Kubernetes API rejected setting the canary weight of Ingress shop/checkout to 10%: HTTP 400 InternalError: ${webhook}`);
    expect(messageOf(err)).not.toMatch(/HTTP-Code|Headers|Body:/);
    expect(fault.hits).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('a 422 is invalid input; another status the caller does not handle is an unexpected error, each named by what was being done', async () => {
    fake.injectFault({ kind: 'status', code: 422, method: 'GET', message: 'Ingress.networking.k8s.io "checkout" is invalid' });
    const invalid = await withKubeRetry('reading the stable Ingress', readStable, { sleep }).catch((e: unknown) => e);
    expect((invalid as CanaryError).kind).toBe('invalid-input');
    expect((invalid as CanaryError).message).toContain('Kubernetes API rejected reading the stable Ingress: HTTP 422');
    fake.injectFault({ kind: 'status', code: 405, method: 'GET' });
    const other = await withKubeRetry('reading the stable Ingress', readStable, { sleep }).catch((e: unknown) => e);
    expect((other as CanaryError).kind).toBe('unexpected');
    expect((other as CanaryError).message).toBe('Kubernetes API rejected reading the stable Ingress: HTTP 405 InternalError: fake-kube injected HTTP 405');
  });

  it('a router weight change rides out a 503 and a 429 on the way', async () => {
    const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
    const router = new IngressRouter({ kc, namespace: 'shop', names: targetNames('checkout', {}), rolloutId: 'r', target: 'checkout', retry: { sleep, random: () => 1 } });
    await router.prepare();
    fake.injectFault({ kind: 'status', code: 503, method: 'PATCH' });
    fake.injectFault({ kind: '429', retryAfterSeconds: 2, method: 'PATCH' });
    await router.setWeight(10);
    expect(await router.getWeight()).toBe(10);
    expect(sleeps).toEqual([500, 2000]);
  });
});

describe('a timed-out call', () => {
  let server: Server;
  let closed: Promise<void>;
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is cancelled on the wire, so nothing keeps the process waiting for an answer that may never come', async () => {
    // An API server that accepts the request and never answers.
    let seen: (req: IncomingMessage) => void = () => undefined;
    const arrived = new Promise<IncomingMessage>((resolve) => (seen = resolve));
    server = createServer((req) => seen(req));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    closed = arrived.then((req) => new Promise<void>((resolve) => req.socket.once('close', () => resolve())));
    const dir = mkdtempSync(join(tmpdir(), 'canary-hang-'));
    try {
      const path = join(dir, 'kubeconfig');
      writeFileSync(path, kubeconfigYaml({ server: url, token: 't' }));
      const api = connect({ kubeconfig: path, env: {} }).kc.makeApiClient(NetworkingV1Api);
      const err = await withKubeRetry('reading the stable Ingress', (o) => api.readNamespacedIngress({ name: 'checkout', namespace: 'shop' }, o), {
        sleep,
        attempts: 1,
        timeoutMs: 100,
        server: url,
      }).catch((e: unknown) => e);
      expect((err as CanaryError).kind).toBe('unreachable');
      expect((err as CanaryError).message).toContain('no answer within 100 ms');
      // Without cancellation the connection stays open until the server answers, i.e. forever
      // (and this waits until the test's own time limit, failing it): gated on the close, not a clock.
      await closed;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a black-holed API server (accepts connections, never answers)', () => {
  let server: Server;
  let dir: string;
  let connections: { closed: boolean }[];
  beforeEach(async () => {
    connections = [];
    server = createServer(() => undefined);
    server.on('connection', (socket) => {
      const seen = { closed: false };
      connections.push(seen);
      socket.once('close', () => (seen.closed = true));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    dir = mkdtempSync(join(tmpdir(), 'canary-blackhole-'));
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
    vi.useRealTimers();
  });

  const blackHoledApi = () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const path = join(dir, 'kubeconfig');
    writeFileSync(path, kubeconfigYaml({ server: url, token: 't' }));
    return { url, api: connect({ kubeconfig: path, env: {} }).kc.makeApiClient(NetworkingV1Api) };
  };

  it('ends one call at its overall deadline, however many attempts remain, cancelling every attempt on the wire', async () => {
    // Virtual time moves only once the attempt in flight is seen on the wire, so a loaded
    // machine cannot time an attempt out before it was even sent: 100 ms attempts against a
    // 1.5 s deadline make exactly 15 attempts, each a connection of its own.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { url, api } = blackHoledApi();
    let settled = false;
    const call = withKubeRetry('reading the stable Ingress', (o) => api.readNamespacedIngress({ name: 'checkout', namespace: 'shop' }, o), {
      attempts: 1000,
      timeoutMs: 100,
      deadlineMs: 1500,
      // A 10 ms wait between attempts that takes no virtual time: attempt n starts at 100(n − 1) ms.
      baseDelayMs: 10,
      maxDelayMs: 10,
      random: () => 1,
      sleep: async () => undefined,
      server: url,
    })
      .catch((e: unknown) => e)
      .finally(() => (settled = true));
    for (let seen = 0; !settled; seen += 1) {
      await waitFor(`attempt ${seen + 1} on the wire`, () => settled || connections.length > seen, { intervalMs: 0 });
      if (!settled) vi.advanceTimersByTime(100);
    }
    const err = await call;
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(5);
    expect((err as CanaryError).message).toMatch(
      new RegExp(`^Kubernetes API at ${url} unreachable while reading the stable Ingress \\(gave up after 15 attempts: .*the 1\\.5s deadline for one API call \\(spec\\.kubernetes\\.deadline\\)`),
    );
    // Each attempt timed out and was given up on the wire: 15 connections, far fewer than the 1,000 allowed, all closed.
    expect(connections).toHaveLength(15);
    await waitFor('every attempt\'s connection to close', () => connections.every((c) => c.closed));
  });

  it('with the default settings, gives up within the default 30 s deadline (virtual time), not after 5 × 30 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const start = Date.now();
    const attempts: number[] = [];
    // The same black hole without the network, so virtual time can run: every attempt hangs.
    const call = withKubeRetry('reading the stable Ingress', () => {
      attempts.push(Date.now() - start);
      return new Promise<never>(() => undefined);
    }).catch((e: unknown) => e);
    await vi.runAllTimersAsync();
    const err = await call;
    const elapsed = Date.now() - start;
    expect((err as CanaryError).kind).toBe('unreachable');
    expect((err as CanaryError).message).toContain('the 30s deadline for one API call');
    expect(elapsed).toBeLessThanOrEqual(KUBE_RETRY_DEFAULTS.deadlineMs);
    expect(KUBE_RETRY_DEFAULTS.deadlineMs).toBe(30_000);
    // 10 s per attempt, so three attempts fit (the last one cut to what is left).
    expect(attempts).toHaveLength(3);
  });
});

describe('connect', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'canary-kubeconfig-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('uses --kubeconfig and reports its context, server, user and namespace', () => {
    const conn = connect({ kubeconfig: fake.kubeconfigPath, env: {} });
    expect({ ...conn, kc: undefined }).toEqual({ kc: undefined, context: 'fake-kube', server: fake.url, user: 'canary-ci', defaultNamespace: 'default' });
  });

  it('a missing --kubeconfig says what was looked for', () => {
    const err = (() => {
      try {
        connect({ kubeconfig: join(dir, 'nope'), env: {} });
      } catch (e) {
        return e;
      }
    })();
    expect((err as CanaryError).exitCode).toBe(2);
    expect(messageOf(err)).toContain(`--kubeconfig ${join(dir, 'nope')}: no such file`);
  });

  it('with nothing anywhere, lists every place looked, in order', () => {
    const err = (() => {
      try {
        connect({ env: { HOME: dir } });
      } catch (e) {
        return e;
      }
    })() as CanaryError;
    expect(err.kind).toBe('invalid-input');
    expect(err.details).toEqual([
      'KUBECONFIG: not set',
      `${join(dir, '.kube', 'config')}: no such file`,
      'in-cluster service account: KUBERNETES_SERVICE_HOST is not set (not running in a pod)',
    ]);
  });

  it('merges a KUBECONFIG list, skipping missing files, and finds ~/.kube/config otherwise', () => {
    const second = join(dir, 'second');
    // kubectl's rule: the first file to define a name wins, so the second file's clusters need their own names.
    writeFileSync(
      second,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'prod',
        clusters: [{ name: 'prod', cluster: { server: 'https://10.0.0.1:6443' } }],
        users: [{ name: 'prod-user', user: { token: 'other-token' } }],
        contexts: [{ name: 'prod', context: { cluster: 'prod', user: 'prod-user' } }],
      }),
    );
    const conn = connect({ env: { KUBECONFIG: [join(dir, 'missing'), fake.kubeconfigPath, second].join(':') }, context: 'prod' });
    expect(conn.server).toBe('https://10.0.0.1:6443');
    expect(connect({ env: { KUBECONFIG: `${fake.kubeconfigPath}:${second}` } }).context).toBe('fake-kube');

    mkdirSync(join(dir, '.kube'));
    writeFileSync(join(dir, '.kube', 'config'), kubeconfigYaml({ server: fake.url, token: 't', namespace: 'shop' }));
    expect(connect({ env: { HOME: dir } }).defaultNamespace).toBe('shop');
  });

  it('an unknown --context lists the contexts available', () => {
    const err = (() => {
      try {
        connect({ kubeconfig: fake.kubeconfigPath, context: 'staging', env: {} });
      } catch (e) {
        return e;
      }
    })() as CanaryError;
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(`--context "staging" is not defined in the kubeconfig --kubeconfig ${fake.kubeconfigPath}`);
    expect(err.details).toEqual(['contexts available: fake-kube']);
  });

  it('a broken kubeconfig is reported without echoing its content (tokens)', () => {
    const broken = join(dir, 'broken');
    writeFileSync(broken, `apiVersion: v1\nusers:\n- name: u\n  user:\n    token: s3cret-token-value\n   bad: [indent\n`);
    const err = (() => {
      try {
        connect({ kubeconfig: broken, env: {} });
      } catch (e) {
        return e;
      }
    })();
    expect((err as CanaryError).kind).toBe('invalid-input');
    expect(messageOf(err)).toMatch(/cannot be used: not valid YAML/);
    expect(messageOf(err)).not.toContain('s3cret-token-value');
  });

  it('falls back to the in-cluster service account', () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'in-cluster-token');
    writeFileSync(join(sa, 'namespace'), 'shop\n');
    const conn = connect({ env: { HOME: dir, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: sa });
    expect({ server: conn.server, namespace: conn.defaultNamespace, context: conn.context }).toEqual({
      server: 'https://10.96.0.1:443',
      namespace: 'shop',
      context: 'in-cluster',
    });
  });
});
