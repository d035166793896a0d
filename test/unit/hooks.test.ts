import { describe, expect, it } from 'vitest';
import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { displayPolicy } from '../../src/policy/display.js';
import { targetNames, type HookSpec, type Policy } from '../../src/policy/policy.js';
import { hookEnvironment, type HookContext, type HookResult, type HookRunner } from '../../src/rollout/hooks.js';
import { policyRefusals, thresholdPolicy } from '../support/policies.js';
import { logMessages, portEngine, type PortEngineOptions } from '../support/port-engine.js';

// spec.hooks: the schema, and the engine over a fake HookRunner (when each point runs, with what
// context, and what a failure does). The process adapter is tested in hook-runner.test.ts.

const hooksPolicy = (hooks: string, extra = '') =>
  thresholdPolicy(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
${extra}  hooks:
${hooks}`);

const ALL = `    - { name: warm-up, at: pre-rollout, command: [./warm.sh], timeout: 30s }
    - { name: probe, at: step, command: [./probe.sh, --quick] }
    - { name: db-check, at: pre-promotion, command: [./db.sh] }
    - { name: notify, at: post-rollout, command: [./notify.sh], env: { CHANNEL: { value: deploys, public: true } } }
`;

describe('spec.hooks schema', () => {
  it('reads each hook with its defaults (timeout 1m, no env)', () => {
    const policy = hooksPolicy(ALL);
    expect(policy.hooks?.map((h) => [h.name, h.at, h.command, h.timeoutMs])).toEqual([
      ['warm-up', 'pre-rollout', ['./warm.sh'], 30_000],
      ['probe', 'step', ['./probe.sh', '--quick'], 60_000],
      ['db-check', 'pre-promotion', ['./db.sh'], 60_000],
      ['notify', 'post-rollout', ['./notify.sh'], 60_000],
    ]);
    expect(policy.hooks?.[3]?.env).toEqual({ CHANNEL: { value: 'deploys', public: true } });
  });

  it('names each bad field and what was expected', () => {
    const details = policyRefusals(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  hooks:
    - { name: a, at: before, command: "./x.sh --flag", timeout: 2h }
    - { name: a, at: step, command: [], env: { 1BAD: x, CANARY_WEIGHT: { value: "9", public: true }, OK: { env: "" } } }
`).join('\n');
    expect(details).toContain('spec.hooks[0].at: expected one of pre-rollout, step, pre-promotion, post-rollout, got "before"');
    expect(details).toContain('spec.hooks[0].command: expected a list like [./scripts/check.sh, --strict]: the executable, then its arguments (run without a shell), got a string');
    expect(details).not.toContain('./x.sh --flag');
    expect(details).toContain('spec.hooks[0].timeout: expected a timeout like "30s" or "5m", at most 1h, got "2h"');
    expect(details).toContain('spec.hooks[1].command: expected a list like [./scripts/check.sh, --strict]: the executable, then its arguments (run without a shell), got an empty list');
    expect(details).toContain('spec.hooks[1].env.1BAD: expected an environment variable name');
    expect(details).toContain("spec.hooks[1].env.CANARY_WEIGHT: names starting with CANARY_ are the rollout's context, set by canary; choose another name");
  });

  it('refuses a name used twice', () => {
    const details = policyRefusals(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  hooks: [{ name: a, at: step, command: [x] }, { name: a, at: pre-rollout, command: [y] }]
`);
    expect(details).toContain('spec.hooks[1].name: "a" is used twice');
  });

  it('shows env values only when public (validate -o json)', () => {
    const policy = hooksPolicy(`    - { name: n, at: post-rollout, command: [x], env: { TOKEN: literal-hook-secret-77, FROM: { env: HOOK_TOKEN }, MODE: { value: strict, public: true } } }\n`);
    const shown = JSON.stringify(displayPolicy(policy));
    expect(shown).not.toContain('literal-hook-secret-77');
    expect(shown).toContain('"MODE":{"value":"strict","public":true}');
    expect(shown).toContain('"FROM":{"env":"HOOK_TOKEN","public":false}');
  });
});

/** What the fake runner saw each hook run with, and the cluster's writes at that moment. */
interface Ran {
  name: string;
  context: HookContext;
  writes: string[];
}

class FakeRunner implements HookRunner {
  readonly ran: Ran[] = [];
  cluster: MemoryCluster | undefined;
  constructor(private readonly outcome: (hook: HookSpec, c: HookContext) => Partial<HookResult> = () => ({})) {}
  async run(hook: HookSpec, context: HookContext): Promise<HookResult> {
    this.ran.push({ name: hook.name, context, writes: [...(this.cluster?.writes ?? [])] });
    return { name: hook.name, at: context.at, ok: true, status: 'exited 0', exitCode: 0, timedOut: false, excerpt: '', ...this.outcome(hook, context) };
  }
}

/** The engine with the fake runner as its HookRunner (none: a dry-run); the runner sees the engine's cluster. */
function hookEngine(policy: Policy, runner?: FakeRunner, opts: Omit<PortEngineOptions, 'hooks'> = {}) {
  const run = portEngine(policy, { ...opts, ...(runner && { hooks: runner }) });
  if (runner) runner.cluster = run.cluster;
  return run;
}
const raised = (writes: readonly string[]) => writes.filter((w) => /canary-weight "\d+" → "[1-9]/.test(w));
const FAILED = { ok: false, status: 'exited 3', exitCode: 3, excerpt: 'migration 42 pending' };

describe('hooks in the engine (fake HookRunner)', () => {
  it('runs each point where it belongs, with the rollout context: pre-rollout before any raise, step after each step, pre-promotion before stable changes, post-rollout after the outcome', async () => {
    const runner = new FakeRunner();
    const policy = hooksPolicy(ALL);
    const { engine, cluster } = hookEngine(policy, runner);
    const outcome = await engine.run();
    expect(outcome.result).toBe('promoted');
    const steps = policy.steps.map((s) => s.weight);
    expect(runner.ran.map((r) => r.name)).toEqual(['warm-up', ...steps.map(() => 'probe'), 'db-check', 'notify']);

    const [pre, ...rest] = runner.ran;
    expect(raised(pre?.writes ?? [])).toEqual([]);
    expect(pre?.writes.some((w) => w.includes('set Deployment shop/checkout-canary image to shop/checkout:2'))).toBe(true);
    expect(pre?.context).toMatchObject({ target: 'checkout', namespace: 'shop', image: 'shop/checkout:2', stableImage: 'shop/checkout:1', at: 'pre-rollout', step: 0, weight: 0 });
    // Each step hook ran at that step's weight, before the next raise.
    rest.slice(0, steps.length).forEach((r, i) => {
      expect(r.context).toMatchObject({ at: 'step', step: i + 1, steps: steps.length, weight: steps[i] });
      expect(raised(r.writes)).toHaveLength(i + 1);
    });
    const promo = rest[steps.length];
    expect(promo?.context).toMatchObject({ at: 'pre-promotion', weight: steps.at(-1) });
    expect(promo?.writes.some((w) => w.includes('set Deployment shop/checkout image'))).toBe(false);
    expect(promo?.writes.some((w) => w.endsWith('→ "100"'))).toBe(false);
    const post = rest.at(-1);
    expect(post?.context).toMatchObject({ at: 'post-rollout', phase: 'promoted', outcome: { result: 'promoted', exitCode: 0 } });
    expect(hookEnvironment(post?.context as HookContext)).toMatchObject({ CANARY_HOOK: 'post-rollout', CANARY_OUTCOME: 'promoted', CANARY_EXIT_CODE: '0', CANARY_ROLLOUT_ID: expect.stringMatching(/^checkout-/) });
    expect((await cluster.load())?.record.hooks?.map((h) => [h.name, h.at, h.ok])).toEqual([
      ['warm-up', 'pre-rollout', true],
      ['probe', `step ${steps.length}`, true],
      ['db-check', 'pre-promotion', true],
      ['notify', 'post-rollout', true],
    ]);
  });

  it('a failing pre-rollout hook rolls back (exit 3) before any weight above 0, with its name, status and output as evidence; post-rollout still runs', async () => {
    const runner = new FakeRunner((h) => (h.name === 'warm-up' ? FAILED : {}));
    const { engine, cluster, events } = hookEngine(hooksPolicy(ALL), runner);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'rolled-back', exitCode: 3, traffic: 'canary at 0%, all traffic on stable' });
    expect(outcome.reason).toBe('hook "warm-up" failed at pre-rollout: exited 3; output: "migration 42 pending"');
    expect(raised(cluster.writes)).toEqual([]);
    expect(cluster.canaryReplicas).toBe(0);
    expect(runner.ran.map((r) => r.name)).toEqual(['warm-up', 'notify']);
    expect(runner.ran[1]?.context.outcome).toMatchObject({ result: 'rolled-back', exitCode: 3 });
    const record = (await cluster.load())?.record;
    expect(record?.phase).toBe('rolled-back');
    expect(record?.rollback?.reason).toContain('hook "warm-up" failed');
    expect(record?.hooks?.find((h) => h.name === 'warm-up')).toMatchObject({ ok: false, exitCode: 3, excerpt: 'migration 42 pending' });
    expect(logMessages(events)).toContain('hook "warm-up" failed at pre-rollout: exited 3; output: "migration 42 pending"');
  });

  it('a failing step hook rolls back from that step: the next raise never happens', async () => {
    const runner = new FakeRunner((h, c) => (h.name === 'probe' && c.step === 1 ? { ...FAILED, status: 'timed out after 1m: its process group was killed', exitCode: null, timedOut: true } : {}));
    const { engine, cluster } = hookEngine(hooksPolicy(ALL), runner);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'rolled-back', exitCode: 3 });
    expect(outcome.reason).toContain('hook "probe" failed at step 1: timed out after 1m');
    const firstStep = hooksPolicy(ALL).steps[0]?.weight;
    expect(raised(cluster.writes).map((w) => w.replace(/.*→ /, ''))).toEqual([`"${firstStep}"`]);
  });

  it('a failing pre-promotion hook rolls back before stable is touched or 100% is written', async () => {
    const runner = new FakeRunner((h) => (h.name === 'db-check' ? FAILED : {}));
    const { engine, cluster } = hookEngine(hooksPolicy(ALL), runner);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'rolled-back', exitCode: 3 });
    expect(cluster.writes.some((w) => w.endsWith('→ "100"'))).toBe(false);
    expect(cluster.writes.some((w) => w.includes('set Deployment shop/checkout image'))).toBe(false);
    expect(await cluster.stableImage()).toBe('shop/checkout:1');
  });

  it('a failing post-rollout hook is reported and changes nothing', async () => {
    const runner = new FakeRunner((h) => (h.name === 'notify' ? FAILED : {}));
    const { engine, cluster, events } = hookEngine(hooksPolicy(ALL), runner);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'promoted', exitCode: 0 });
    expect(logMessages(events)).toContain('hook "notify" failed at post-rollout: exited 3; output: "migration 42 pending"; the outcome stands (promoted)');
    const record = (await cluster.load())?.record;
    expect(record?.outcome?.result).toBe('promoted');
    expect(record?.hooks?.find((h) => h.name === 'notify')).toMatchObject({ ok: false });
  });

  it('a cancellation while a hook runs is that cancellation (exit 4, traffic to 0%), not a hook failure; post-rollout still runs', async () => {
    const cancel = new AbortController();
    // The deploy is cancelled while the hook runs; the adapter then ends it and says so.
    const runner = new FakeRunner((h) => {
      if (h.name !== 'warm-up') return {};
      cancel.abort();
      return { ok: false, status: 'stopped: the deploy was cancelled, its process group was killed', exitCode: null };
    });
    const { engine, cluster } = hookEngine(hooksPolicy(ALL), runner, { signal: cancel.signal });
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4 });
    expect(outcome.reason).not.toContain('hook "warm-up" failed');
    expect(raised(cluster.writes)).toEqual([]);
    expect(runner.ran.map((r) => r.name)).toEqual(['warm-up', 'notify']);
    expect(runner.ran[1]?.context.outcome).toMatchObject({ result: 'aborted', exitCode: 4 });
  });

  describe('--resume', () => {
    /** A promoted run's record, turned back into the record of a deploy that died at `phase`. */
    async function diedAt(phase: 'initializing' | 'promoting'): Promise<MemoryCluster> {
      const { engine, cluster: first } = hookEngine(hooksPolicy(ALL), new FakeRunner());
      await engine.run();
      const record = (await first.load())?.record;
      if (!record) throw new Error('no record');
      const { outcome: _outcome, hooks: _hooks, ...rest } = record;
      const died =
        phase === 'promoting'
          ? { ...rest, phase, weight: 0, images: { ...record.images, stable: 'shop/checkout:1' }, promotion: 'updating-stable' as const }
          : { ...rest, phase, stepIndex: 0, weight: 0, steps: [], checks: [] };
      const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
      cluster.weight = 0;
      await cluster.save(died, null);
      return cluster;
    }

    it('a deploy that died before its first step runs pre-rollout again', async () => {
      const cluster = await diedAt('initializing');
      const runner = new FakeRunner();
      const { engine } = hookEngine(hooksPolicy(ALL), runner, { cluster });
      const stored = await cluster.load();
      expect((await engine.run(stored ?? undefined)).result).toBe('promoted');
      expect(runner.ran.map((r) => r.name)[0]).toBe('warm-up');
    });

    it('a deploy that died while promoting runs neither pre-rollout, step nor pre-promotion again; post-rollout once it is done', async () => {
      const cluster = await diedAt('promoting');
      const runner = new FakeRunner();
      const { engine } = hookEngine(hooksPolicy(ALL), runner, { cluster });
      const stored = await cluster.load();
      expect((await engine.run(stored ?? undefined)).result).toBe('promoted');
      expect(runner.ran.map((r) => r.name)).toEqual(['notify']);
    });
  });

  it('says what it would run, and runs nothing, without a HookRunner (dry-run, replay)', async () => {
    const { engine, events } = hookEngine(hooksPolicy(ALL));
    expect((await engine.run()).result).toBe('promoted');
    expect(logMessages(events)).toContain('would run hook "warm-up" at pre-rollout: ["./warm.sh"] (skipped: a dry-run or replay deploys nothing for it to act on)');
    expect(logMessages(events)).toContain('would run hook "notify" at post-rollout: ["./notify.sh"] (skipped: a dry-run or replay deploys nothing for it to act on)');
  });
});
