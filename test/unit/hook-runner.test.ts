import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { CommandHookRunner } from '../../src/hooks/command-runner.js';
import type { HookSpec } from '../../src/policy/policy.js';
import { clearRegisteredSecrets } from '../../src/redaction/registry.js';
import type { HookContext } from '../../src/rollout/hooks.js';

// The process adapter of spec.hooks, with real small programs (node -e …): the environment a hook
// gets, exit status and output excerpt, the timeout killing the whole process group, a start
// failure, the deploy's cancellation, and secrets redacted from what is kept.

const NODE = process.execPath;
const SECRET = 'hook-secret-value-5d4c3b2a19';
const CONTEXT: HookContext = {
  target: 'checkout',
  namespace: 'shop',
  image: 'shop/checkout:2',
  stableImage: 'shop/checkout:1',
  rolloutId: 'checkout-20260115T100000Z',
  at: 'step',
  phase: 'progressing',
  step: 2,
  steps: 3,
  weight: 25,
};

const hook = (script: string, extra: Partial<HookSpec> = {}): HookSpec => ({ name: 'h', at: 'step', command: [NODE, '-e', script], timeoutMs: 60_000, env: {}, ...extra });

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'canary-hooks-'));
});
afterEach(async () => {
  clearRegisteredSecrets();
  await rm(dir, { recursive: true, force: true });
});

/** The state of a process from /proc: undefined when it no longer exists; "Z" for a zombie (dead, not yet reaped). */
function procState(pid: number): string | undefined {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

describe('CommandHookRunner (real processes)', () => {
  it('gives the hook the rollout context, the policy env and a few basics, and none of the deploy’s other variables', async () => {
    const out = join(dir, 'env.json');
    const spec = hook(`require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env))`, { env: { MODE: { value: 'strict', public: true } } });
    const runner = CommandHookRunner.forHooks([spec], { PATH: process.env['PATH'], HOME: '/home/ci', KUBE_TOKEN: 'deploy-only-secret', PROMETHEUS_PASSWORD: 'x' });
    const result = await runner.run(spec, CONTEXT);
    expect(result).toMatchObject({ name: 'h', ok: true, status: 'exited 0', exitCode: 0, timedOut: false });
    const env = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
    expect(env).toMatchObject({
      CANARY_TARGET: 'checkout',
      CANARY_NAMESPACE: 'shop',
      CANARY_IMAGE: 'shop/checkout:2',
      CANARY_STABLE_IMAGE: 'shop/checkout:1',
      CANARY_ROLLOUT_ID: 'checkout-20260115T100000Z',
      CANARY_HOOK: 'step',
      CANARY_PHASE: 'progressing',
      CANARY_STEP: '2',
      CANARY_STEPS: '3',
      CANARY_WEIGHT: '25',
      MODE: 'strict',
      HOME: '/home/ci',
    });
    expect(env['KUBE_TOKEN']).toBeUndefined();
    expect(env['PROMETHEUS_PASSWORD']).toBeUndefined();
    expect(env['CANARY_OUTCOME']).toBeUndefined();
  });

  it('post-rollout: the outcome and exit code are in the environment', async () => {
    const out = join(dir, 'env.json');
    const spec = hook(`require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env))`, { at: 'post-rollout' });
    const result = await CommandHookRunner.forHooks([spec], {}).run(spec, { ...CONTEXT, at: 'post-rollout', phase: 'rolled-back', outcome: { result: 'rolled-back', exitCode: 3, reason: 'x' } });
    expect(result.ok).toBe(true);
    expect(JSON.parse(await readFile(out, 'utf8'))).toMatchObject({ CANARY_HOOK: 'post-rollout', CANARY_OUTCOME: 'rolled-back', CANARY_EXIT_CODE: '3', CANARY_PHASE: 'rolled-back' });
  });

  it('reports a non-zero exit with the end of its output (stdout and stderr) as the excerpt', async () => {
    const spec = hook(`console.log('x'.repeat(3000)); console.error('migration 42 is pending'); process.exit(3)`);
    const result = await CommandHookRunner.forHooks([spec], {}).run(spec, CONTEXT);
    expect(result).toMatchObject({ ok: false, status: 'exited 3', exitCode: 3, timedOut: false });
    expect(result.excerpt.endsWith('migration 42 is pending')).toBe(true);
    expect(result.excerpt.startsWith('…')).toBe(true);
    expect(result.excerpt.length).toBeLessThanOrEqual(1001);
  });

  it('a timeout kills the whole process group, the hook and what it started', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    // The hook starts a grandchild that ignores its output and lives forever, then waits forever itself.
    const script = `
      const { spawn } = require('child_process');
      const fs = require('fs');
      const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      fs.writeSync(1, 'started ' + g.pid);
      fs.writeFileSync(${JSON.stringify(pidFile)}, String(g.pid));
      setInterval(() => {}, 1000);`;
    const runner = new CommandHookRunner({ env: new Map(), base: {}, killGraceMs: 200 });
    // On a loaded machine the timeout may fire before the grandchild exists: each try is still a
    // timeout, and the assertion on the group waits for a try in which the grandchild was started.
    for (let timeoutMs = 1500; ; timeoutMs *= 2) {
      const result = await runner.run(hook(script, { timeoutMs }), CONTEXT);
      expect(result).toMatchObject({ ok: false, exitCode: null, timedOut: true, status: `timed out after ${timeoutMs % 1000 === 0 ? `${timeoutMs / 1000}s` : `${timeoutMs}ms`}: its process group was killed` });
      if (!existsSync(pidFile)) continue;
      const grandchild = Number(await readFile(pidFile, 'utf8'));
      expect(result.excerpt).toBe(`started ${grandchild}`);
      // Gone, or dead and waiting to be reaped by init: either way it runs no more.
      expect([undefined, 'Z']).toContain(procState(grandchild));
      break;
    }
  });

  it('the deploy’s cancellation ends the hook at once (its group killed), said as such', async () => {
    const ready = join(dir, 'ready');
    const spec = hook(`require('fs').writeFileSync(${JSON.stringify(ready)}, 'x'); setInterval(() => {}, 1000)`);
    const cancel = new AbortController();
    const running = new CommandHookRunner({ env: new Map(), base: {}, killGraceMs: 200 }).run(spec, CONTEXT, cancel.signal);
    // Gate on the hook having started, not on time.
    while (!existsSync(ready)) await new Promise((r) => setTimeout(r, 20));
    cancel.abort();
    expect(await running).toMatchObject({ ok: false, exitCode: null, timedOut: false, status: 'stopped: the deploy was cancelled, its process group was killed' });
  });

  it('says when the executable cannot be started', async () => {
    const spec: HookSpec = { name: 'missing', at: 'pre-rollout', command: ['./no-such-hook.sh'], timeoutMs: 5000, env: {} };
    const result = await CommandHookRunner.forHooks([spec], { PATH: process.env['PATH'] }).run(spec, CONTEXT);
    expect(result.ok).toBe(false);
    expect(result.exitCode).toBeNull();
    expect(result.status).toContain('could not start "./no-such-hook.sh": ENOENT (no such executable');
  });

  it('a secret the policy hands a hook is redacted from its output excerpt; argv carries none', async () => {
    process.env['HOOK_TEST_TOKEN'] = SECRET;
    try {
      const spec = hook(`console.log('token=' + process.env.API_TOKEN + ' argv=' + JSON.stringify(process.argv.slice(1))); process.exit(1)`, { env: { API_TOKEN: { env: 'HOOK_TEST_TOKEN', public: false } } });
      const result = await CommandHookRunner.forHooks([spec]).run(spec, CONTEXT);
      expect(result.ok).toBe(false);
      expect(result.excerpt).toContain('token=[REDACTED]');
      expect(result.excerpt).not.toContain(SECRET);
    } finally {
      delete process.env['HOOK_TEST_TOKEN'];
    }
  });

  it('a policy env from a missing variable is refused before anything runs (exit 2), naming the field', () => {
    const spec = hook('0', { env: { API_TOKEN: { env: 'HOOK_TEST_NOT_SET', public: false } } });
    expect(() => CommandHookRunner.forHooks([spec], {})).toThrow(CanaryError);
    try {
      CommandHookRunner.forHooks([spec], {});
    } catch (err) {
      expect((err as CanaryError).kind).toBe('invalid-input');
      expect((err as Error).message).toContain('spec.hooks[0].env.API_TOKEN');
    }
  });
});
