import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { targetNames } from '../../src/policy/policy.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import type { CallBudget, OwnRouteState, ScaleDownResult, StableStatus, StableWriteGuard, TrafficState } from '../../src/rollout/ports.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { requestStop, resumeStop, STOP_STATES, type StopMachinePorts, type StopState, type Stopper } from '../../src/rollout/stop-machine.js';
import { checkoutEngine } from '../support/checkout-engine.js';
import { leaseCounter, memoryRollback } from '../support/memory-rollback.js';
import { stoppedRecord, stopReached } from '../support/records.js';
import { START } from '../support/times.js';
import { thresholdPolicy } from '../support/policies.js';
import { healthy, ScriptedMetrics, type Scenario } from '../support/scripted-metrics.js';

// The stop machine, state by state: a record left in each state (as a crashed stopper leaves it)
// is finished by `canary rollback`'s use case and by a `--resume`d deploy to the same end; a
// stale stopper (old token) loses; a second stopper arriving during each state wins cleanly.
// Every race is gated on the state observed (a hook on the call that belongs to the state), on a
// virtual clock; nothing sleeps.

const names = targetNames('checkout', {});
const ctx = { target: 'checkout', namespace: 'shop' };
const OLD = 'shop/checkout:1';
const NEW = 'shop/checkout:2';
const UNFINISHED: StopState[] = ['requested', 'traffic-zero-confirmed', 'stable-restored', 'canary-scaled-down', 'recorded'];

/** A cluster whose calls can be held at a chosen point, so a second stopper acts there. */
class HookedCluster extends MemoryCluster {
  hooks: Partial<Record<'stop' | 'promote' | 'scale' | 'inspect', () => Promise<void>>> = {};
  private async at(name: keyof HookedCluster['hooks']): Promise<void> {
    const hook = this.hooks[name];
    delete this.hooks[name];
    await hook?.();
  }
  override async stop(marker: string, budget?: CallBudget): Promise<OwnRouteState[]> {
    await this.at('stop');
    return super.stop(marker);
  }
  override async inspect(): Promise<TrafficState> {
    await this.at('inspect');
    return super.inspect();
  }
  override async promoteStable(image: string, guard?: StableWriteGuard): Promise<void> {
    await this.at('promote');
    return super.promoteStable(image, guard);
  }
  override async scaleDownCanary(): Promise<ScaleDownResult> {
    await this.at('scale');
    return super.scaleDownCanary();
  }
  override async verifyStable(): Promise<StableStatus> {
    return { available: true, message: `stable runs ${this.stable}, available` };
  }
}

/** The cluster as a stopper that crashed in `state` left it: 0% once confirmed, the canary down once scaled. */
function clusterLeftIn(state: StopState, was: { weight: number; stoppedBy: string; stable: string }): HookedCluster {
  const c = new HookedCluster('shop', names, NEW);
  const reached = stopReached(state);
  c.weight = reached('traffic-zero-confirmed') ? 0 : was.weight;
  c.stoppedBy = was.stoppedBy;
  c.canaryImage = NEW;
  c.canaryReplicas = reached('canary-scaled-down') ? 0 : 3;
  c.stable = was.stable;
  return c;
}

/** The record and the cluster as a stopper that crashed in `state` (during a promotion) leaves them. */
async function crashedIn(state: StopState, token = 'deploy ci-1#1'): Promise<HookedCluster> {
  const c = clusterLeftIn(state, { weight: 25, stoppedBy: 'rolled-back by deploy', stable: stopReached(state)('stable-restored') ? OLD : NEW });
  const reason = 'stable unavailable after the image change';
  const record = stoppedRecord(
    state,
    { requestedBy: 'deploy ci-1', reason, result: 'rolled-back', token, restoreImage: OLD, outcome: { exitCode: 3, traffic: 'canary at 0%, all traffic on stable' } },
    { stepIndex: 2, weight: c.weight ?? 0, promotion: 'updating-stable', rollback: { reason, requestedBy: 'deploy ci-1', at: new Date(START).toISOString() } },
  );
  await c.save(record, null);
  return c;
}

const leaseOf = leaseCounter;
const rollback = (c: HookedCluster, lease = leaseOf()) => memoryRollback(c, { lease });

async function resumedDeploy(c: HookedCluster, lease = leaseOf()) {
  const clock = new VirtualClock(START + 60_000);
  const { engine } = checkoutEngine({
    policy: thresholdPolicy(),
    metrics: new ScriptedMetrics(START, healthy),
    clock,
    cluster: c,
    extra: {
      stop: {
        token: 'deploy ci-2#2',
        release: async () => {
          lease.released += 1;
          return 'Lease released';
        },
      },
    },
  });
  const stored = await c.load();
  const outcome = await engine.run(stored!);
  return { outcome, lease };
}

/**
 * The one consistent end: 0% read back, stable on the recorded image, canary down, record final
 * (rolled back, or aborted when an operator took the stop on before it was recorded), Lease released.
 */
async function expectFinished(c: HookedCluster, lease: { released: number }, token: string, result: 'rolled-back' | 'aborted' = 'rolled-back') {
  expect((await c.inspect()).ours.map((r) => r.weight)).toEqual([0]);
  expect(c.stable).toBe(OLD);
  expect(c.canaryReplicas).toBe(0);
  const record = (await c.load())!.record;
  expect(record.phase).toBe(result);
  expect(record.outcome?.result).toBe(result);
  expect(record.weight).toBe(0);
  expect(record.stop?.state).toBe('released');
  expect(record.stop?.token).toBe(token);
  expect(lease.released).toBe(1);
}

function machine(c: HookedCluster, lease = leaseOf()): StopMachinePorts {
  return {
    router: c,
    workloads: c,
    store: c,
    clock: new VirtualClock(START + 30_000),
    release: async () => {
      lease.released += 1;
      return 'Lease released';
    },
  };
}

const stopper = (token: string): Stopper => ({ token, ctx, deadlineMs: 30_000, callTimeoutMs: 10_000 });

describe('the stop machine, resumed from each state', () => {
  for (const state of UNFINISHED) {
    it(`${state}: canary rollback finishes it`, async () => {
      const c = await crashedIn(state);
      const { report, lease } = await rollback(c);
      expect(report.exitCode).toBe(0);
      const stop = (await c.load())!.record.stop!;
      expect(stop.token).toMatch(/^rollback by alice/);
      // Taken on before it was recorded, the stop is the operator's; once recorded, it stays the deploy's.
      const operators = state !== 'recorded';
      await expectFinished(c, lease, stop.token, operators ? 'aborted' : 'rolled-back');
      if (operators) expect(stop).toMatchObject({ requestedBy: 'alice', reason: 'rolled back by alice: pager', result: 'aborted' });
      expect(report.actions.some((l) => l.startsWith('record checkout-20260115T100000Z: '))).toBe(true);
    });

    it(`${state}: a --resume'd deploy finishes it to the same end`, async () => {
      const c = await crashedIn(state);
      const { outcome, lease } = await resumedDeploy(c);
      expect(outcome.result).toBe('rolled-back');
      expect(outcome.exitCode).toBe(3);
      await expectFinished(c, lease, 'deploy ci-2#2');
    });

    it(`${state}: the stale stopper (old token) loses once another took the stop on`, async () => {
      const c = await crashedIn(state);
      const held = (await c.load())!;
      // The new stopper runs to the end while the old one still holds the version it last wrote.
      const lease = leaseOf();
      await resumeStop(machine(c, lease), stopper('deploy ci-2#2'));
      await expectFinished(c, lease, 'deploy ci-2#2');
      // Its own view of the record is the one it last wrote; the fence read shows the new token.
      let loads = 0;
      const staleLease = leaseOf();
      const writes = c.writes.length;
      const stale = await requestStop(
        { ...machine(c, staleLease), store: { load: async () => (loads++ === 0 ? held : c.load()), save: (r, v) => c.save(r, v) } },
        stopper('deploy ci-1#1'),
        held.record.stop!,
      );
      expect(stale.lostTo).toBe('deploy ci-2#2');
      expect(stale.exitCode).toBe(4);
      // It lost before acting: no write to the cluster, no Lease released.
      expect(c.writes.length).toBe(writes);
      expect(staleLease.released).toBe(0);
      expect((await c.load())!.record.stop).toMatchObject({ state: 'released', token: 'deploy ci-2#2' });
    });
  }

  it('a record that holds no unfinished stop is not the machine\'s: resumeStop does nothing', async () => {
    const c = await crashedIn('released' as StopState);
    expect(await resumeStop(machine(c), stopper('x'))).toBeNull();
  });
});

/** A stop the deploy made past its promotion's point of no return (stable runs NEW, available), left in `state`. */
async function crashedForwardIn(state: StopState, token = 'deploy ci-1#1'): Promise<HookedCluster> {
  const c = clusterLeftIn(state, { weight: 100, stoppedBy: 'promoted by deploy', stable: NEW });
  const recorded = stopReached(state)('recorded');
  const reason = 'all 3 checks passed; finished forward after: Kubernetes API unreachable: ECONNRESET';
  const record = stoppedRecord(
    state,
    { requestedBy: 'deploy ci-1', reason, result: 'promoted', direction: 'forward', token, outcome: { exitCode: 0, traffic: 'all traffic on stable, which now runs the new image' } },
    { stepIndex: 2, weight: c.weight ?? 0, images: { stable: recorded ? NEW : OLD, canary: NEW }, ...(!recorded && { promotion: 'routing-to-stable' as const }) },
  );
  await c.save(record, null);
  return c;
}

/** A forward stop's one end: 0% read back, stable still on the new image (never set back), canary down, promoted, Lease released. */
async function expectForward(c: HookedCluster, lease: { released: number }, token: string) {
  expect((await c.inspect()).ours.map((r) => r.weight)).toEqual([0]);
  expect(c.stable).toBe(NEW);
  expect(c.writes.filter((w) => String(w).includes('Deployment shop/checkout image'))).toEqual([]);
  expect(c.canaryReplicas).toBe(0);
  const record = (await c.load())!.record;
  expect(record).toMatchObject({ phase: 'promoted', weight: 0, images: { stable: NEW, canary: NEW }, outcome: { result: 'promoted' }, stop: { state: 'released', token, direction: 'forward', result: 'promoted' } });
  expect(record.rollback).toBeUndefined();
  expect(record.promotion).toBeUndefined();
  expect(lease.released).toBe(1);
}

describe('a stop past the point of no return is finished forward, from each state', () => {
  for (const state of UNFINISHED) {
    it(`${state}: a --resume'd deploy finishes the promotion (exit 0), never setting stable back`, async () => {
      const c = await crashedForwardIn(state);
      const { outcome, lease } = await resumedDeploy(c);
      expect(outcome).toMatchObject({ result: 'promoted', exitCode: 0 });
      expect(outcome.reason).toContain('finished forward');
      await expectForward(c, lease, 'deploy ci-2#2');
    });

    it(`${state}: canary rollback finishes it forward too and says it cannot undo the promotion (exit 1)`, async () => {
      const c = await crashedForwardIn(state);
      const { report, lease, lines } = await rollback(c);
      expect(report.exitCode).toBe(1);
      expect(report.result).toBe('promoted');
      const stop = (await c.load())!.record.stop!;
      expect(stop).toMatchObject({ requestedBy: 'deploy ci-1', result: 'promoted' });
      await expectForward(c, lease, stop.token);
      expect(lines.join('\n')).toContain('past its point of no return');
      expect(lines.join('\n')).toContain('kubectl rollout undo deployment/checkout -n shop');
    });
  }
});

/** Which call belongs to each state's transition: where a second stopper arrives. */
const DURING: Record<Exclude<StopState, 'released' | 'recorded'>, 'stop' | 'promote' | 'inspect'> = {
  requested: 'stop',
  'traffic-zero-confirmed': 'promote',
  'stable-restored': 'inspect',
  'canary-scaled-down': 'inspect',
};

describe('a second stopper during each state', () => {
  for (const [state, call] of Object.entries(DURING) as [keyof typeof DURING, 'stop' | 'promote' | 'inspect'][]) {
    it(`${state}: the second stopper finishes, the first loses at its next write, one consistent end`, async () => {
      const c = await crashedIn(state === 'canary-scaled-down' ? 'stable-restored' : state);
      const lease = leaseOf();
      let second: Awaited<ReturnType<typeof resumeStop>> = null;
      // The first stopper takes the stop on; inside its transition's call a second signal (another
      // stopper with a newer token) takes it over and runs it to the end.
      c.hooks[call] = async () => {
        second = await resumeStop(machine(c, lease), stopper('signal ci-1#2'));
      };
      const first = await resumeStop(machine(c, lease), stopper('deploy ci-1#1-resumed'));
      expect(second).not.toBeNull();
      expect(second!.state).toBe('released');
      expect(first?.lostTo).toBe('signal ci-1#2');
      await expectFinished(c, lease, 'signal ci-1#2');
    });
  }
});

describe('a rollback racing the deploy\'s own stop', () => {
  it('the deploy requested the stop; canary rollback arrives while its 0% write is in flight: one story', async () => {
    const c = await crashedIn('requested');
    const lease = leaseOf();
    let rb: Awaited<ReturnType<typeof rollback>> | null = null;
    c.hooks.stop = async () => {
      rb = await rollback(c, lease);
    };
    const deploy = await resumeStop(machine(c, lease), stopper('deploy ci-1#1'));
    expect(rb!.report.exitCode).toBe(0);
    expect(deploy?.lostTo).toMatch(/^rollback by alice/);
    await expectFinished(c, lease, (await c.load())!.record.stop!.token, 'aborted');
  });

  it("the deploy's own halt, its 0% write in flight, meets canary rollback's stop on the still-progressing record: the operator's story, exit 4, no second incident", async () => {
    const c = new HookedCluster('shop', names, OLD);
    const lease = leaseOf();
    const opened: string[] = [];
    let rb: Awaited<ReturnType<typeof rollback>> | null = null;
    const { engine } = checkoutEngine({
      policy: thresholdPolicy(),
      metrics: new ScriptedMetrics(START, regression),
      clock: new VirtualClock(START),
      cluster: c,
      incidents: [{ name: 'pager', open: async (r) => (opened.push(r.id), { sink: 'pager', ok: true, message: 'sent' }) }],
      extra: { stop: { token: 'deploy ci-1#1' } },
      onEvent: (e) => {
        // The failing check decides the halt; the deploy's first 0% write is where the operator arrives.
        if (e.type === 'check' && e.check.verdict === 'fail') c.hooks.stop = async () => void (rb = await rollback(c, lease));
      },
    });
    const outcome = await engine.run();
    expect(rb!.report.exitCode).toBe(0);
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4, reason: 'rolled back by an operator by alice: pager' });
    const record = (await c.load())!.record;
    expect(record.stop).toMatchObject({ state: 'released', requestedBy: 'alice', token: expect.stringMatching(/^rollback by alice/) });
    await expectFinished(c, lease, record.stop!.token, 'aborted');
    expect(opened).toEqual([]);
  });

  it('a fresh stop is requested on a progressing record: requested → released through every state', async () => {
    const c = await crashedIn('requested');
    const stored = (await c.load())!;
    const progressing = { ...stored.record, phase: 'progressing' as const, promotion: undefined } as RolloutRecord;
    delete progressing.stop;
    delete progressing.promotion;
    delete progressing.rollback;
    await c.save(progressing, stored.version);
    c.stable = OLD;
    const seen: string[] = [];
    const store = { load: () => c.load(), save: async (r: RolloutRecord, v: string | null) => (seen.push(r.stop!.state), c.save(r, v)) };
    const lease = leaseOf();
    const report = await requestStop({ ...machine(c, lease), store }, stopper('deploy ci-1#1'), { requestedBy: 'deploy ci-1', reason: 'canary errors', result: 'rolled-back' });
    expect(seen).toEqual(['requested', ...STOP_STATES.slice(1)]);
    expect(report.state).toBe('released');
    await expectFinished(c, lease, 'deploy ci-1#1');
  });
});

/** A canary failing from minute 20: the engine decides a rollback at its first check after that. */
const regression: Scenario = (minute, side) => (side === 'canary' && minute > 20 ? { requests: 600, errors: 72, p95: 0.2 } : healthy(minute, side));

/**
 * A deploy that halts on its own, seeing the cluster through its own connection. With
 * `crashAfter`, the process "dies" once that stop state is saved: every later call of its
 * connection never returns (gated on the save observed, not on time); others see the cluster as is.
 */
async function haltingDeploy(c: HookedCluster, opts: { crashAfter?: StopState; release?: () => Promise<string> } = {}) {
  const states: string[] = [];
  let dead = false;
  let died!: () => void;
  const gone = new Promise<void>((resolve) => (died = resolve));
  const view = new Proxy(c, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (dead) return new Promise(() => undefined);
        const result: unknown = await (value as (...a: unknown[]) => unknown).apply(target, args);
        const record = prop === 'save' ? (args[0] as RolloutRecord) : null;
        if (record?.stop) states.push(record.stop.state);
        if (opts.crashAfter && record?.stop?.state === opts.crashAfter) {
          dead = true;
          died();
        }
        return result;
      };
    },
  });
  const metrics = new ScriptedMetrics(START, regression);
  const { engine } = checkoutEngine({
    policy: thresholdPolicy(),
    metrics,
    clock: new VirtualClock(START),
    cluster: c,
    extra: {
      ports: { router: view, workloads: view, state: view, metrics, incidents: [] },
      stop: { token: 'deploy ci-1#1', workloads: view, ...(opts.release && { release: opts.release }) },
    },
  });
  const running = engine.run();
  const outcome = opts.crashAfter ? (await gone, null) : await running;
  return { outcome, states };
}

describe('the deploy\'s own halt walks the same states', () => {
  it('records requested-to-released through its record, its token as the stopper; its Lease given back', async () => {
    const c = new HookedCluster('shop', names, OLD);
    const lease = leaseOf();
    const { outcome, states } = await haltingDeploy(c, {
      release: async () => {
        lease.released += 1;
        return 'Lease released';
      },
    });
    expect(outcome).toMatchObject({ result: 'rolled-back', exitCode: 3 });
    // The machine drives every transition of the deploy's own stop, each one write of its record.
    expect(states).toEqual(['traffic-zero-confirmed', 'stable-restored', 'canary-scaled-down', 'recorded', 'released']);
    expect((await c.load())!.record.stop).toMatchObject({ state: 'released', token: 'deploy ci-1#1', result: 'rolled-back', requestedBy: expect.stringMatching(/^deploy checkout-/) });
    expect(lease.released).toBe(1);
  });

  it('a deploy that died right after confirming 0% is finished by canary rollback, and by a --resume, to the same end', async () => {
    for (const finisher of ['rollback', 'resume'] as const) {
      const c = new HookedCluster('shop', names, OLD);
      const { states } = await haltingDeploy(c, { crashAfter: 'traffic-zero-confirmed' });
      expect(states).toEqual(['traffic-zero-confirmed']);
      expect(c.canaryReplicas).toBeGreaterThan(0);
      const lease = leaseOf();
      if (finisher === 'rollback') expect((await rollback(c, lease)).report.exitCode).toBe(0);
      else expect((await resumedDeploy(c, lease)).outcome).toMatchObject({ result: 'rolled-back', exitCode: 3 });
      const stop = (await c.load())!.record.stop!;
      await expectFinished(c, lease, stop.token, finisher === 'rollback' ? 'aborted' : 'rolled-back');
    }
  });

  it('a second signal drives the stop machine as far as it gets before the process exits; canary rollback takes it on from there', async () => {
    const c = new HookedCluster('shop', names, OLD);
    let forced: Promise<void> | undefined;
    // The process exits while the second signal's stop scales the canary down: that call never ends.
    c.hooks.scale = () => new Promise<void>(() => undefined);
    const { engine } = checkoutEngine({
      policy: thresholdPolicy(),
      metrics: new ScriptedMetrics(START, healthy),
      clock: new VirtualClock(START),
      cluster: c,
      extra: { stop: { token: 'deploy ci-1#1' } },
      onEvent: (e) => {
        if (e.type === 'check' && e.check.index === 2 && !forced) forced = engine.recordForcedExit();
      },
    });
    void engine.run().catch(() => undefined);
    await until(async () => (await c.load())?.record.stop?.state === 'stable-restored');
    const left = (await c.load())!.record;
    expect(left.stop).toMatchObject({ state: 'stable-restored', token: 'deploy ci-1#1 (second signal)', result: 'aborted' });
    expect(engine.trafficSafe).toBe(true);
    const lease = leaseOf();
    expect((await rollback(c, lease)).report.exitCode).toBe(0);
    expect((await c.load())!.record.stop).toMatchObject({ state: 'released', token: expect.stringMatching(/^rollback by alice/) });
    expect(lease.released).toBe(1);
    expect(c.canaryReplicas).toBe(0);
    expect((await c.inspect()).ours.map((r) => r.weight)).toEqual([0]);
  });
});

/** Waits for in-process state (turns of the event loop, no clock): the memory cluster answers at once. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 10_000; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('the state waited for was never observed');
}

describe('the Lease bounds what a stopping deploy does', () => {
  it('a deploy whose Lease is past its renew deadline when it halts writes no 0%, exits 5 naming canary rollback; the route keeps what it had', async () => {
    const c = new HookedCluster('shop', names, OLD);
    const clock = new VirtualClock(START);
    let lostAt: number | null = null;
    const stopWrites: number[] = [];
    c.hooks.stop = async () => void stopWrites.push(clock.now());
    const { engine, events } = checkoutEngine({
      policy: thresholdPolicy(),
      metrics: new ScriptedMetrics(START, regression),
      clock,
      cluster: c,
      extra: {
        stop: {
          token: 'deploy ci-1#1',
          deadlineMs: 120_000,
          // The Lease could not be renewed from the regression on: nothing this deploy writes after it.
          mayAct: () => (lostAt !== null ? 'the Lease shop/checkout-canary could not be renewed past its renew deadline' : null),
        },
      },
      onEvent: (e) => {
        if (e.type === 'check' && e.check.verdict === 'fail' && lostAt === null) lostAt = clock.now();
      },
    });
    const outcome = await engine.run();
    expect(stopWrites).toEqual([]);
    expect(outcome.exitCode).toBe(5);
    expect(outcome.traffic).toMatch(/NOT confirmed at 0%.*could not be renewed past its renew deadline.*canary rollback checkout -n shop/);
    expect(events.some((e) => e.type === 'log' && e.message.includes('the 0% write waits for the Lease'))).toBe(true);
    expect((await c.inspect()).ours[0]!.weight).toBeGreaterThan(0);
    expect(engine.trafficSafe).toBe(false);
  });
});

describe('a deploy whose record cannot be saved once its stop confirmed 0%', () => {
  it('keeps traffic at 0%, does nothing the record could not show (no scale-down), exits 5; canary rollback finishes it', async () => {
    class NoSaves extends HookedCluster {
      refuse = false;
      override async save(record: RolloutRecord, expected: string | null): Promise<string> {
        if (this.refuse || record.stop) {
          this.refuse = true;
          throw new CanaryError('unreachable', 'Kubernetes API unreachable: ECONNREFUSED (ConfigMap)');
        }
        return super.save(record, expected);
      }
    }
    const c = new NoSaves('shop', names, OLD);
    const { engine } = checkoutEngine({
      policy: thresholdPolicy(),
      metrics: new ScriptedMetrics(START, regression),
      clock: new VirtualClock(START),
      cluster: c,
      extra: { stop: { token: 'deploy ci-1#1' } },
    });
    const outcome = await engine.run();
    expect(outcome.exitCode).toBe(5);
    expect(outcome.reason).toMatch(/the stop is left in state requested: finish it with `canary rollback checkout -n shop/);
    expect(outcome.traffic).toBe('canary at 0%, all traffic on stable');
    expect(engine.trafficSafe).toBe(true);
    expect(c.weight).toBe(0);
    expect(c.canaryReplicas).toBeGreaterThan(0);
    c.refuse = false;
    const fixed = Object.assign(c, { save: HookedCluster.prototype.save });
    const lease = leaseOf();
    expect((await rollback(fixed, lease)).report.exitCode).toBe(0);
    expect(c.canaryReplicas).toBe(0);
    expect((await c.load())!.record).toMatchObject({ phase: 'aborted', weight: 0, stop: { state: 'released' } });
  });
});
