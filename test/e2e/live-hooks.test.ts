import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CANARY_INGRESS, NAMESPACE, NEW_IMAGE, SHORT_STEPS, startLiveWorld, WEIGHT_ANNOTATION, type LiveWorld } from '../support/live-harness.js';

// Command hooks end to end: the built CLI against the fake Kubernetes API, each hook a real
// process (node -e …). The hooks call a loopback "probe" server of the test with their context;
// the probe notes what the cluster held at that moment, so "before any traffic" is read from the
// API server's state when the hook ran, not from timing.

const SECRET = 'hook-api-token-8e7d6c5b4a39';
const NODE = process.execPath;

interface Probe {
  hook: string;
  env: Record<string, string>;
  weight: string | undefined;
  canaryAvailable: number | undefined;
}

let world: LiveWorld;
let probeUrl = '';
let server: http.Server;
const probes: Probe[] = [];

beforeAll(async () => {
  world = await startLiveWorld();
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const env = JSON.parse(body) as Record<string, string>;
      const dep = world.fake.get('Deployment', NAMESPACE, 'checkout-canary') as { status?: { availableReplicas?: number } } | undefined;
      probes.push({ hook: env['CANARY_HOOK'] ?? '?', env, weight: world.canaryIngress()?.metadata?.annotations?.[WEIGHT_ANNOTATION], canaryAvailable: dep?.status?.availableReplicas });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  probeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await world?.stop();
});
beforeEach(() => {
  world.reset();
  probes.length = 0;
});

/** A node -e script that posts its environment to the probe, prints the JS expression `say` on stderr, then exits with `code`. */
function script(say: string, code: number): string {
  return `const r = require('http').request(process.env.PROBE, { method: 'POST' }, (res) => { res.resume(); res.on('end', () => { console.error(${say}); process.exit(${code}); }); }); r.end(JSON.stringify(process.env));`;
}
const hookLine = (name: string, at: string, say: string, code: number, env = '') =>
  `    - { name: ${name}, at: ${at}, command: [${JSON.stringify(NODE)}, "-e", ${JSON.stringify(script(say, code))}], timeout: 2m, env: { PROBE: { value: "${probeUrl}", public: true }${env} } }`;
const text = (t: string) => JSON.stringify(t);

/** Every weight a write to the canary Ingress carried (create, replace or JSON Patch). */
function weightsWritten(): string[] {
  return world.fake.requests
    .filter((r) => r.path.includes('/ingresses') && (r.method === 'PATCH' || r.method === 'PUT' || r.method === 'POST'))
    .flatMap((r) => [...JSON.stringify(r.body ?? '').matchAll(/canary-weight(?:"|~1)?[^0-9]{0,40}?"(\d+)"/g)].map((m) => m[1] ?? ''));
}

describe('command hooks, through the CLI', () => {
  it('runs pre-rollout (canary ready, 0%), step, pre-promotion and post-rollout hooks with the rollout context, and promotes', async () => {
    const policy = await world.writePolicy('hooks-pass', {
      steps: SHORT_STEPS,
      hooks: [hookLine('warm-up', 'pre-rollout', text('warmed'), 0), hookLine('probe', 'step', text('probed'), 0), hookLine('db', 'pre-promotion', text('db ok'), 0), hookLine('notify', 'post-rollout', text('sent'), 0)],
    });
    const run = await world.deploy([], { policy }).done;
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(probes.map((p) => p.hook)).toEqual(['pre-rollout', 'step', 'step', 'pre-promotion', 'post-rollout']);
    const [pre, step1, step2, promo, post] = probes;
    expect(pre).toMatchObject({ weight: '0', env: { CANARY_TARGET: 'checkout', CANARY_NAMESPACE: NAMESPACE, CANARY_IMAGE: NEW_IMAGE, CANARY_STEP: '0', CANARY_WEIGHT: '0' } });
    expect(pre?.canaryAvailable).toBeGreaterThan(0);
    expect(step1).toMatchObject({ weight: '10', env: { CANARY_STEP: '1', CANARY_WEIGHT: '10' } });
    expect(step2).toMatchObject({ weight: '50', env: { CANARY_STEP: '2', CANARY_WEIGHT: '50' } });
    expect(promo).toMatchObject({ weight: '50', env: { CANARY_HOOK: 'pre-promotion' } });
    expect(post?.env).toMatchObject({ CANARY_OUTCOME: 'promoted', CANARY_EXIT_CODE: '0', CANARY_PHASE: 'promoted' });
    expect(post?.env['CANARY_ROLLOUT_ID']).toBe(world.record()?.id);
    // Nothing of the deploy's own environment but the basics: not its kubeconfig path.
    expect(pre?.env['KUBECONFIG']).toBeUndefined();
    expect(run.stdout).toContain('hook "warm-up" passed at pre-rollout: exited 0');
    // After the outcome's summary, still reported.
    expect(run.stdout.indexOf('hook "notify" passed at post-rollout: exited 0')).toBeGreaterThan(run.stdout.indexOf('PROMOTED'));
    expect(world.record()?.hooks?.map((h) => [h.name, h.ok])).toEqual([
      ['warm-up', true],
      ['probe', true],
      ['db', true],
      ['notify', true],
    ]);
  });

  it('a failing pre-rollout hook rolls back (exit 3) before any weight above 0 was written, with its name, status and redacted output as evidence', async () => {
    const policy = await world.writePolicy('hooks-fail', {
      steps: SHORT_STEPS,
      hooks: [hookLine('db-check', 'pre-rollout', `${text('migration 42 pending; token in use: ')} + process.env.API_TOKEN`, 4, ', API_TOKEN: { env: HOOK_API_TOKEN }'), hookLine('notify', 'post-rollout', text('sent'), 0)],
    });
    const run = await world.deploy([], { policy, env: { HOOK_API_TOKEN: SECRET } }).done;
    expect(run.code, run.stdout + run.stderr).toBe(3);
    const out = run.stdout + run.stderr;
    expect(out).toContain('hook "db-check" failed at pre-rollout: exited 4; output: "migration 42 pending; token in use: [REDACTED]"');
    expect(out).not.toContain(SECRET);

    // Never a weight above 0; the canary Ingress back at 0 with the stop marker.
    const weights = weightsWritten();
    expect(weights.length).toBeGreaterThan(0);
    expect(weights.every((w) => w === '0')).toBe(true);
    expect(world.canaryIngress()?.metadata?.annotations?.[WEIGHT_ANNOTATION]).toBe('0');
    expect(probes.map((p) => [p.hook, p.weight])).toEqual([
      ['pre-rollout', '0'],
      ['post-rollout', '0'],
    ]);
    expect(probes[1]?.env).toMatchObject({ CANARY_OUTCOME: 'rolled-back', CANARY_EXIT_CODE: '3' });

    const record = world.record();
    expect(record?.phase).toBe('rolled-back');
    expect(record?.outcome?.reason).toContain('hook "db-check" failed at pre-rollout: exited 4');
    expect(record?.hooks?.find((h) => h.name === 'db-check')).toMatchObject({ ok: false, exitCode: 4, excerpt: 'migration 42 pending; token in use: [REDACTED]' });
    expect(JSON.stringify(record)).not.toContain(SECRET);
    const status = await world.run(['status', 'checkout', '-n', NAMESPACE]);
    expect(status.stdout).toContain('hooks:   db-check FAILED at pre-rollout (exited 4); notify passed at post-rollout (exited 0)');
    expect(JSON.stringify(world.canaryIngress())).not.toContain(SECRET);
  });

  it('a dry-run says which hooks it would run and runs none', async () => {
    const policy = await world.writePolicy('hooks-dry', { steps: SHORT_STEPS, hooks: [hookLine('warm-up', 'pre-rollout', text('warmed'), 0)] });
    const run = await world.run(['deploy', 'checkout', '-n', NAMESPACE, '--image', 'shop/checkout:2', '--dry-run', '--prometheus', world.prom.url], { policy });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('would run hook "warm-up" at pre-rollout');
    expect(probes).toHaveLength(0);
    expect(world.fake.get('Ingress', NAMESPACE, CANARY_INGRESS)).toBeUndefined();
  });
});
