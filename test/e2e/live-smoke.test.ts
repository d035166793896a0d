import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { headerProxy, type Handler, type HeaderProxy } from '../support/header-proxy.js';
import { CANARY_INGRESS, NAMESPACE, SHORT_STEPS, startLiveWorld, WEIGHT_ANNOTATION, type LiveWorld } from '../support/live-harness.js';

// Smoke tests before traffic, end to end: the built CLI against the fake Kubernetes API, the smoke
// requests sent to a real loopback server standing in for the canary behind a proxy that routes by
// the X-Canary header as ingress-nginx's canary-by-header would (everything else goes to "stable").

const SECRET = 'smoke-api-key-3c2b1a0f9e8d7c6b';
const BY_HEADER = 'nginx.ingress.kubernetes.io/canary-by-header';
const INGRESS_PATH = `/apis/networking.k8s.io/v1/namespaces/${NAMESPACE}/ingresses/${CANARY_INGRESS}`;
const WEIGHT_POINTER = `/metadata/annotations/${WEIGHT_ANNOTATION.replace(/\//g, '~1')}`;
const BY_HEADER_POINTER = `/metadata/annotations/${BY_HEADER.replace(/\//g, '~1')}`;

let world: LiveWorld;
let proxy: HeaderProxy;
let canary: Handler;
beforeAll(async () => {
  world = await startLiveWorld();
  proxy = await headerProxy('X-Canary', 'always', (r) => canary(r), () => ({ status: 200, body: 'stable' }));
});
afterAll(async () => {
  await proxy?.close();
  await world?.stop();
});
beforeEach(() => {
  world.reset();
  proxy.canary.received.length = 0;
  proxy.stable.received.length = 0;
});
afterEach(() => {
  canary = () => ({ status: 200, body: '{"status":"ok"}' });
});

async function smokePolicy(name: string): Promise<string> {
  return world.writePolicy(name, {
    steps: SHORT_STEPS,
    target: ['    headerRouting: { header: X-Canary, value: always }'],
    smokeTests: [
      '    tests:',
      `      - { name: health, url: "${proxy.url}/healthz", json: { path: status, equals: ok } }`,
      `      - { name: api, url: "${proxy.url}/api/orders", headers: { X-Api-Key: { env: SMOKE_API_KEY } }, body: orders }`,
    ],
  });
}

/** Every JSON Patch on the canary Ingress that landed, as [weight, header routing added?]. */
function ingressPatches(): { weight: string | undefined; byHeader: boolean }[] {
  return world.fake.requests
    .filter((r) => r.method === 'PATCH' && r.path === INGRESS_PATH && r.status === 200 && Array.isArray(r.body))
    .map((r) => {
      const ops = r.body as { op?: string; path?: string; value?: unknown }[];
      const weight = ops.find((o) => o.op === 'add' && o.path === WEIGHT_POINTER)?.value;
      return { weight: typeof weight === 'string' ? weight : undefined, byHeader: ops.some((o) => o.op === 'add' && o.path === BY_HEADER_POINTER) };
    });
}

const everything = (run: { stdout: string; stderr: string }) => `${run.stdout}\n${run.stderr}\n${JSON.stringify(world.record())}\n${JSON.stringify(world.canaryIngress())}`;

describe('smoke tests before traffic, through the CLI', () => {
  it('a passing suite runs against the canary with header routing at 0%, once the canary is ready, and the rollout proceeds', async () => {
    // What the cluster held when the first smoke request arrived at the canary.
    let seen: { available: unknown; weight: unknown; byHeader: unknown } | undefined;
    canary = (r) => {
      const dep = world.fake.get('Deployment', NAMESPACE, 'checkout-canary') as { status?: { availableReplicas?: number } } | undefined;
      const ann = world.canaryIngress()?.metadata?.annotations ?? {};
      seen ??= { available: dep?.status?.availableReplicas, weight: ann[WEIGHT_ANNOTATION], byHeader: ann[BY_HEADER] };
      return { status: 200, body: r.url === '/healthz' ? '{"status":"ok"}' : '{"orders":[]}' };
    };
    const policy = await smokePolicy('smoke-pass');
    const run = await world.deploy([], { policy, env: { SMOKE_API_KEY: SECRET } }).done;
    expect(run.code, run.stdout + run.stderr).toBe(0);
    // Both requests reached the canary, carrying the routing header and the secret header; none reached stable.
    expect(proxy.canary.received.map((r) => r.url)).toEqual(['/healthz', '/api/orders']);
    expect(proxy.canary.received.every((r) => r.headers['x-canary'] === 'always')).toBe(true);
    expect(proxy.canary.received[1]?.headers['x-api-key']).toBe(SECRET);
    expect(proxy.stable.received).toHaveLength(0);
    // The first write to the canary Ingress after it was made: header routing at weight 0, then the steps.
    const patches = ingressPatches();
    expect(patches[0]).toEqual({ weight: '0', byHeader: true });
    expect(patches.slice(1).map((p) => p.weight)).toEqual(['10', '50', '100', '0']);
    // When the smoke requests came, the canary's pods were available and only the header routed to it.
    expect(seen).toMatchObject({ weight: '0', byHeader: 'X-Canary' });
    expect(seen?.available).toBeGreaterThan(0);
    expect(run.stdout).toContain('all 2 smoke tests passed before traffic');
    expect(world.record()?.smokeTests?.results.map((r) => [r.name, r.ok, r.status])).toEqual([
      ['health', true, 200],
      ['api', true, 200],
    ]);
    expect(everything(run)).not.toContain(SECRET);
  });

  it('a failing suite rolls back (exit 3) before any weight above 0 was ever written, with the evidence and no secret', async () => {
    // The canary is broken and echoes the request's key in its error page.
    canary = (r) => (r.url === '/healthz' ? { status: 200, body: '{"status":"ok"}' } : { status: 500, body: `internal error, key=${String(r.headers['x-api-key'])}` });
    const policy = await smokePolicy('smoke-fail');
    const run = await world.deploy([], { policy, env: { SMOKE_API_KEY: SECRET } }).done;
    expect(run.code, run.stdout + run.stderr).toBe(3);
    expect(proxy.canary.received.map((r) => r.url)).toEqual(['/healthz', '/api/orders']);

    // No request to the API server ever set a weight above 0 on any Ingress.
    const weights = world.fake.requests
      .filter((r) => r.path.includes('/ingresses') && (r.method === 'PATCH' || r.method === 'PUT' || r.method === 'POST'))
      .flatMap((r) => {
        const body = JSON.stringify(r.body ?? '');
        return [...body.matchAll(/canary-weight(?:"|~1)?[^0-9]{0,40}?"(\d+)"/g)].map((m) => m[1]);
      });
    expect(weights.length).toBeGreaterThan(0);
    expect(weights.every((w) => w === '0')).toBe(true);
    expect(ingressPatches().map((p) => p.weight)).not.toContain('10');

    // Traffic is off the canary: weight 0, header routing removed, the stop marker set.
    const ann = world.canaryIngress()?.metadata?.annotations ?? {};
    expect(ann[WEIGHT_ANNOTATION]).toBe('0');
    expect(ann[BY_HEADER]).toBeUndefined();

    const out = run.stdout + run.stderr;
    expect(out).toContain(`smoke test "api" failed: GET ${proxy.url}/api/orders → status 500 (status 500, expected 200)`);
    expect(out).toContain('internal error, key=');
    expect(out).toContain('1 of 2 smoke tests failed before traffic');
    const record = world.record();
    expect(record?.phase).toBe('rolled-back');
    expect(record?.smokeTests?.results.find((r) => r.name === 'api')).toMatchObject({ ok: false, status: 500, method: 'GET', url: `${proxy.url}/api/orders` });
    expect(record?.smokeTests?.results.find((r) => r.name === 'api')?.excerpt).toContain('internal error, key=');
    const status = await world.run(['status', 'checkout', '-n', NAMESPACE]);
    expect(status.stdout).toContain('smoke:   1/2 passed before traffic');
    expect(status.stdout).toContain('failed: api');
    expect(everything(run)).not.toContain(SECRET);
  });

  it('a dry-run says what it would run and sends no smoke request', async () => {
    const policy = await smokePolicy('smoke-dry');
    const run = await world.run(['deploy', 'checkout', '-n', NAMESPACE, '--image', 'shop/checkout:2', '--dry-run', '--prometheus', world.prom.url], { policy, env: { SMOKE_API_KEY: SECRET } });
    expect(run.stdout).toContain('would run 2 smoke tests before traffic');
    expect(proxy.canary.received).toHaveLength(0);
  });
});
