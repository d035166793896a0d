import { afterEach, describe, expect, it } from 'vitest';
import type { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { displayPolicy } from '../../src/policy/display.js';
import { SmokeClient, stableBaseUrl } from '../../src/http/smoke-client.js';
import type { Policy, SmokeTestSpec } from '../../src/policy/policy.js';
import type { SmokeResult, SmokeTester } from '../../src/rollout/smoke-tests.js';
import { headerProxy, type HeaderProxy } from '../support/header-proxy.js';
import { policyRefusals, thresholdPolicy } from '../support/policies.js';
import { logMessages, portEngine } from '../support/port-engine.js';

const SECRET = 'smoke-secret-token-9f8e7d6c5b4a';

const smokePolicy = (tests = `[{ name: health, path: /healthz }, { name: ready, url: "https://checkout.example.com/ready", json: { path: status, equals: ok } }]`) =>
  thresholdPolicy(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  target: { headerRouting: { header: X-Canary, value: always } }
  smokeTests:
    tests: ${tests}
`);

describe('spec.smokeTests schema', () => {
  it('fills in the defaults: GET, status 200, 5 s, no retries, before traffic', () => {
    const policy = smokePolicy();
    expect(policy.smokeTests).toMatchObject({ when: 'before-traffic', afterEachStep: false });
    expect(policy.smokeTests?.tests[0]).toEqual({ name: 'health', method: 'GET', path: '/healthz', headers: {}, status: [200], timeoutMs: 5000, retries: 0 });
    expect(policy.smokeTests?.tests[1]?.json).toEqual({ path: 'status', equals: 'ok' });
  });

  it('refuses smoke tests without header routing, naming the field', () => {
    const details = policyRefusals('apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  smokeTests: { tests: [{ name: h, path: /h }] }\n');
    expect(details.join('\n')).toContain('spec.smokeTests: smoke tests reach the canary through header routing before any weight is raised; set spec.target.headerRouting');
  });

  it('names each bad field and what was expected', () => {
    const details = policyRefusals(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  target: { headerRouting: { header: X-Canary } }
  smokeTests:
    when: later
    tests:
      - { name: a, path: healthz, status: 42, method: FETCH, timeout: soon, retries: -1 }
      - { name: b, url: "https://u:p@host/x", path: /x }
`).join('\n');
    expect(details).toContain('spec.smokeTests.when: expected "before-traffic", got "later"');
    expect(details).toContain('spec.smokeTests.tests[0].path: expected a path starting with "/" like "/healthz", got "healthz"');
    expect(details).toContain('spec.smokeTests.tests[0].status: expected an HTTP status like 200, or a list like [200, 204], got 42');
    expect(details).toContain('spec.smokeTests.tests[0].method: expected one of GET');
    expect(details).toContain('spec.smokeTests.tests[0].timeout: expected a request timeout');
    expect(details).toContain('spec.smokeTests.tests[0].retries: expected a whole number from 0 to 10, got -1');
    expect(details).toContain('spec.smokeTests.tests[1].url: expected an http:// or https:// URL without user:password@ (the value is not shown');
    expect(details).not.toContain('u:p@');
  });

  it('refuses a test that sets the routing header itself, and names used twice', () => {
    const details = policyRefusals(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  target: { headerRouting: { header: X-Canary } }
  smokeTests: { tests: [{ name: a, path: /a, headers: { x-canary: { value: always, public: true } } }, { name: a, path: /b }] }
`).join('\n');
    expect(details).toContain('spec.smokeTests.tests[0].headers.X-Canary: this header is the routing header');
    expect(details).toContain('spec.smokeTests.tests[1].name: "a" is used twice');
  });

  it('takes the Gateway API router with url tests, and refuses a path test there (no Ingress host to send it to)', () => {
    const gateway = (tests: string) => `apiVersion: canary/v1
kind: RolloutPolicy
spec:
  target: { headerRouting: { header: X-Canary } }
  traffic: { router: gateway-api }
  smokeTests: { tests: ${tests} }
`;
    expect(thresholdPolicy(gateway('[{ name: a, url: "http://shop.example.com/healthz" }]')).smokeTests?.tests[0]?.url).toBe('http://shop.example.com/healthz');
    const details = policyRefusals(gateway('[{ name: a, url: "http://shop.example.com/a" }, { name: b, path: /b }]')).join('\n');
    expect(details).toContain('spec.smokeTests.tests[1].path: with spec.traffic.router "gateway-api" give the test an absolute "url"');
    expect(details).not.toContain('tests[0]');
  });

  it('shows smoke-test header values only when public (validate -o json)', () => {
    const policy = smokePolicy(`[{ name: a, url: "https://h.example.com/x?token=abc123secret", headers: { X-Key: "literal-secret-value-42", X-Tenant: { value: shop, public: true } } }]`);
    const shown = JSON.stringify(displayPolicy(policy));
    expect(shown).not.toContain('literal-secret-value-42');
    expect(shown).not.toContain('abc123secret');
    expect(shown).toContain('"X-Tenant":{"value":"shop","public":true}');
  });

  it('takes the stable host from the Ingress, https when TLS covers it', () => {
    expect(stableBaseUrl({ spec: { rules: [{ host: 'shop.example.com' }], tls: [{ hosts: ['shop.example.com'] }] } })).toBe('https://shop.example.com');
    expect(stableBaseUrl({ spec: { rules: [{}, { host: 'shop.example.com' }] } })).toBe('http://shop.example.com');
    expect(stableBaseUrl({ spec: { rules: [{}] } })).toBeUndefined();
  });
});

class FakeTester implements SmokeTester {
  readonly ran: string[] = [];
  constructor(
    private readonly outcome: (t: SmokeTestSpec) => Partial<SmokeResult>,
    private readonly onRun: () => void = () => undefined,
  ) {}
  async run(test: SmokeTestSpec): Promise<SmokeResult> {
    this.ran.push(test.name);
    this.onRun();
    return { name: test.name, ok: true, reason: 'status 200', attempts: 1, method: test.method, url: test.url ?? `https://checkout.example.com${test.path}`, status: 200, excerpt: '', ...this.outcome(test) };
  }
}

/** The engine with the fake tester as its SmokeTester (none: a dry-run). */
const smokeEngine = (policy: Policy, tester?: SmokeTester) => portEngine(policy, tester && { smoke: tester });

describe('smoke tests in the engine (fake SmokeTester)', () => {
  it('runs the suite once the canary is ready, with header routing on at 0%, before the first raise; then proceeds', async () => {
    let seenAt: { writes: string[]; replicas: number } | undefined;
    let cluster: MemoryCluster | undefined;
    const tester = new FakeTester(() => ({}), () => {
      if (cluster) seenAt ??= { writes: [...cluster.writes], replicas: cluster.canaryReplicas };
    });
    const run = smokeEngine(smokePolicy(), tester);
    cluster = run.cluster;
    const outcome = await run.engine.run();
    expect(outcome.result).toBe('promoted');
    expect(tester.ran).toEqual(['health', 'ready']);
    // The canary was up, and the last write before the smoke requests turned on header routing at 0%.
    expect(seenAt?.replicas).toBeGreaterThan(0);
    expect(seenAt?.writes.at(-1)).toContain('canary-by-header "X-Canary" at canary-weight "0"');
    expect(seenAt?.writes.some((w) => /→ "(10|25|50|100)"/.test(w))).toBe(false);
    expect(logMessages(run.events)).toContain('all 2 smoke tests passed before traffic');
    const stored = await run.cluster.load();
    expect(stored?.record.smokeTests?.results.map((r) => r.ok)).toEqual([true, true]);
  });

  it('rolls back (exit 3) before any weight above 0 when a smoke test fails, with the evidence', async () => {
    const tester = new FakeTester((t) => (t.name === 'ready' ? { ok: false, status: 503, reason: 'status 503, expected 200', excerpt: '{"status":"starting"}' } : {}));
    const { engine, cluster, events } = smokeEngine(smokePolicy(), tester);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'rolled-back', exitCode: 3, traffic: 'canary at 0%, all traffic on stable' });
    expect(outcome.reason).toContain('1 of 2 smoke tests failed before traffic: smoke test "ready" failed: GET https://checkout.example.com/ready → status 503 (status 503, expected 200); response: "{\\"status\\":\\"starting\\"}"');
    expect(cluster.writes.some((w) => /canary-weight "\d+" → "[1-9]/.test(w))).toBe(false);
    expect(cluster.headerRouted).toBe(false);
    expect(cluster.canaryReplicas).toBe(0);
    const stored = await cluster.load();
    expect(stored?.record.phase).toBe('rolled-back');
    expect(stored?.record.smokeTests?.results.find((r) => r.name === 'ready')).toMatchObject({ ok: false, status: 503 });
    expect(logMessages(events).some((m) => m.startsWith('smoke test "ready" failed'))).toBe(true);
  });

  it('a stop written on the route while the canary got ready is an operator\'s rollback (exit 4), not an unexpected error: header routing never goes on', async () => {
    const tester = new FakeTester(() => ({}));
    const { engine, cluster } = smokeEngine(smokePolicy(), tester);
    const start = cluster.startCanary.bind(cluster);
    cluster.startCanary = async (image: string) => {
      await start(image);
      cluster.stoppedBy = 'rolled back by alice at 2026-01-15T10:00:05Z: pager';
    };
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4 });
    expect(outcome.reason).toContain('rolled back by an operator (stop written on the canary route: rolled back by alice');
    expect(tester.ran).toEqual([]);
    expect(cluster.headerRouted).toBe(false);
  });

  it('runs the suite after each step when the policy asks', async () => {
    const policy = thresholdPolicy(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  target: { headerRouting: { header: X-Canary } }
  smokeTests: { after-each-step: true, tests: [{ name: health, path: /healthz }] }
`);
    const tester = new FakeTester(() => ({}));
    const { engine, events } = smokeEngine(policy, tester);
    expect((await engine.run()).result).toBe('promoted');
    expect(tester.ran).toHaveLength(1 + policy.steps.length);
    expect(logMessages(events)).toContain('all 1 smoke test passed after step 1');
  });

  it('says what it would run, and runs nothing, without a SmokeTester (dry-run, replay)', async () => {
    const { engine, cluster, events } = smokeEngine(smokePolicy());
    expect((await engine.run()).result).toBe('promoted');
    expect(logMessages(events)).toContain('would run 2 smoke tests before traffic (skipped: no canary to send requests to)');
    expect(cluster.writes.some((w) => w.includes('canary-by-header'))).toBe(false);
  });
});

describe('SmokeClient against a real loopback server routed by header', () => {
  let proxy: HeaderProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    delete process.env['SMOKE_TOKEN'];
  });

  const spec = (over: Partial<SmokeTestSpec>): SmokeTestSpec => ({ name: 't', method: 'GET', headers: {}, status: [200], timeoutMs: 2000, retries: 0, ...over });

  it('reaches the canary (not stable) with the routing header, and judges status, body and JSON', async () => {
    proxy = await headerProxy('X-Canary', 'always', () => ({ status: 200, body: '{"status":"ok","checks":{"db":"up"}}' }), () => ({ status: 200, body: 'stable' }));
    const client = new SmokeClient({ headerRouting: { header: 'X-Canary', value: 'always' } });
    try {
      const ok = await client.run(spec({ name: 'json', url: `${proxy.url}/healthz`, json: { path: 'checks.db', equals: 'up' }, body: '"status"' }));
      expect(ok).toMatchObject({ ok: true, status: 200, attempts: 1, method: 'GET', url: `${proxy.url}/healthz` });
      expect(proxy.canary.received.map((r) => r.url)).toEqual(['/healthz']);
      expect(proxy.stable.received).toHaveLength(0);
      const wrong = await client.run(spec({ name: 'json', url: `${proxy.url}/healthz`, json: { path: 'status', equals: 'green' } }));
      expect(wrong).toMatchObject({ ok: false, reason: 'status is "ok", expected "green"' });
    } finally {
      client.close();
    }
  });

  it('keeps the failing response as evidence: first 500 bytes, secret header values redacted', async () => {
    process.env['SMOKE_TOKEN'] = SECRET;
    // The canary echoes the token back in a long error page.
    proxy = await headerProxy('X-Canary', 'always', (r) => ({ status: 500, body: `error for ${String(r.headers['x-api-key'])} ${'x'.repeat(2000)}` }), () => ({ status: 200, body: 'stable' }));
    const client = new SmokeClient({ headerRouting: { header: 'X-Canary', value: 'always' } });
    try {
      const r = await client.run(spec({ name: 'api', url: `${proxy.url}/api`, headers: { 'X-Api-Key': { env: 'SMOKE_TOKEN', public: false } } }));
      expect(proxy.canary.received[0]?.headers['x-api-key']).toBe(SECRET);
      expect(r).toMatchObject({ ok: false, status: 500, reason: 'status 500, expected 200' });
      expect(r.excerpt.startsWith('error for ')).toBe(true);
      expect(r.excerpt).not.toContain(SECRET);
      expect(r.excerpt.length).toBeLessThanOrEqual(520);
      expect(JSON.stringify(r)).not.toContain(SECRET);
    } finally {
      client.close();
    }
  });

  it('retries a failing test and passes once the canary answers', async () => {
    let n = 0;
    proxy = await headerProxy('X-Canary', 'always', () => (++n < 3 ? { status: 503, body: 'warming up' } : { status: 204, body: '' }), () => ({ status: 200, body: 'stable' }));
    const client = new SmokeClient({ headerRouting: { header: 'X-Canary', value: 'always' }, retryDelayMs: 1 });
    try {
      const r = await client.run(spec({ url: `${proxy.url}/`, status: [200, 204], retries: 3 }));
      expect(r).toMatchObject({ ok: true, status: 204, attempts: 3 });
      const gaveUp = await client.run(spec({ url: `${proxy.url}/`, status: [418], retries: 1 }));
      expect(gaveUp).toMatchObject({ ok: false, attempts: 2, status: 204 });
    } finally {
      client.close();
    }
  });

  it('reports no response when nothing answers', async () => {
    const client = new SmokeClient({ headerRouting: { header: 'X-Canary' } });
    try {
      const r = await client.run(spec({ url: 'http://127.0.0.1:9/x' }));
      expect(r).toMatchObject({ ok: false, status: null });
      expect(r.reason).toMatch(/^no response: /);
    } finally {
      client.close();
    }
  });
});
