import { describe, expect, it } from 'vitest';
import { statusExitCode } from '../../src/cli/status.js';
import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { targetNames, type Policy } from '../../src/policy/policy.js';
import { renderStatus, statusView } from '../../src/report/status-view.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import type { StableStatus, StableWriteGuard } from '../../src/rollout/ports.js';
import { STOP_STATES, type StopState } from '../../src/rollout/stop-machine.js';
import { checkoutEngine } from '../support/checkout-engine.js';
import { memoryRollback } from '../support/memory-rollback.js';
import { stoppedRecord, stopReached } from '../support/records.js';
import { START } from '../support/times.js';
import { thresholdPolicy } from '../support/policies.js';
import { healthy, ScriptedMetrics, type Scenario } from '../support/scripted-metrics.js';

// The rollback after promotion (the post-promotion watch's breach, `canary rollback` during the
// watch) is a stop of the one stop machine: resumable from each state, shown by `status` like any
// stop, and two stoppers end with one story. Races are gated on the call a state makes (a hook on
// the stable write or the 0% write), on a virtual clock; nothing sleeps.

const names = targetNames('checkout', {});
const OLD = 'shop/checkout:1';
const NEW = 'shop/checkout:2';
const UNFINISHED: StopState[] = ['requested', 'traffic-zero-confirmed', 'stable-restored', 'canary-scaled-down', 'recorded'];
const WATCH_REASON = "rolled back after promotion by the post-promotion watch: error-rate: stable's error rate 10% is above the 5% limit (2 breaching checks in a row)";
const setBack = (w: string) => w === `set Deployment shop/checkout image to ${OLD} and wait until fully available`;

const watchPolicy = (): Policy => thresholdPolicy('apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  postPromotion: { duration: 10m }\n');
/** Stable degrades once it runs the new image (the default plan promotes at minute 40). */
const degradesAfterPromotion: Scenario = (minute, side) => (side === 'stable' && minute > 40 ? { requests: 2400, errors: 240, p95: 0.2 } : healthy(minute, side));

/** A cluster whose stable write or 0% write can run a second stopper first (once). */
class HookedCluster extends MemoryCluster {
  hooks: Partial<Record<'promote' | 'stop', () => Promise<void>>> = {};
  override async promoteStable(image: string, guard?: StableWriteGuard): Promise<void> {
    const hook = image === OLD ? this.hooks.promote : undefined;
    if (hook) delete this.hooks.promote;
    await hook?.();
    return super.promoteStable(image, guard);
  }
  override async stop(marker: string): Promise<Awaited<ReturnType<MemoryCluster['stop']>>> {
    const hook = this.hooks.stop;
    delete this.hooks.stop;
    await hook?.();
    return super.stop(marker);
  }
  override async verifyStable(): Promise<StableStatus> {
    return { available: true, message: `stable runs ${this.stable}, available` };
  }
}

/** The cluster and record as a watch whose breach stop crashed in `state` leaves them. */
async function crashedIn(state: StopState): Promise<HookedCluster> {
  const c = new HookedCluster('shop', names, NEW);
  const reached = stopReached(state);
  c.weight = 0;
  c.canaryImage = NEW;
  c.canaryReplicas = reached('canary-scaled-down') ? 0 : 1;
  c.stable = reached('stable-restored') ? OLD : NEW;
  const at = new Date(START).toISOString();
  const by = 'deploy checkout-20260115T100000Z (post-promotion watch)';
  const record = stoppedRecord(
    state,
    { requestedBy: by, reason: WATCH_REASON, result: 'rolled-back-after-promotion', token: 'deploy ci-1#1', restoreImage: OLD, outcome: { exitCode: 7, traffic: `all traffic on stable, which runs ${OLD} again` } },
    {
      stepIndex: 3,
      weight: 0,
      images: { stable: reached('recorded') ? OLD : NEW, canary: NEW },
      watch: { startedAt: at, endsAt: new Date(START + 600_000).toISOString(), intervalMs: 60_000, previousImage: OLD, image: NEW, checks: 2, passed: 0, failed: 2, inconclusive: 0, breachesInRow: 2, failureLimit: 2, result: 'rolled-back', rolledBackBy: by },
      rollback: { reason: WATCH_REASON, requestedBy: by, at, ...(reached('stable-restored') && { stableVerified: true, stableRestore: { image: OLD, done: true, message: `stable Deployment checkout set back to ${OLD} and available` } }) },
    },
  );
  await c.save(record, null);
  return c;
}

const rollback = (c: MemoryCluster, requestedBy = 'alice') => memoryRollback(c, { requestedBy });

async function resumedDeploy(c: MemoryCluster) {
  const released = { count: 0 };
  const { engine } = checkoutEngine({
    policy: watchPolicy(),
    metrics: new ScriptedMetrics(START, degradesAfterPromotion),
    clock: new VirtualClock(START + 60_000),
    cluster: c,
    extra: { stop: { token: 'deploy ci-2#2', release: async () => ((released.count += 1), 'Lease released') } },
  });
  const outcome = await engine.run((await c.load())!);
  return { outcome, released };
}

async function finished(c: MemoryCluster) {
  const record = (await c.load())!.record;
  expect(c.stable).toBe(OLD);
  expect(c.canaryReplicas).toBe(0);
  expect(record.phase).toBe('rolled-back-after-promotion');
  expect(record.images.stable).toBe(OLD);
  expect(record.stop?.state).toBe('released');
  return record;
}

describe('a rollback after promotion, resumed from each state of the stop machine', () => {
  for (const state of UNFINISHED) {
    it(`${state}: a --resume'd deploy finishes it: stable on the previous image, exit 7`, async () => {
      const c = await crashedIn(state);
      const { outcome, released } = await resumedDeploy(c);
      expect(outcome).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 7 });
      const record = await finished(c);
      expect(record.stop?.token).toBe('deploy ci-2#2');
      expect(record.outcome).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 7, reason: WATCH_REASON });
      expect(released.count).toBe(1);
      // Stable is written once, and only by the state that sets it back.
      expect(c.writes.filter(setBack)).toEqual(STOP_STATES.indexOf(state) < STOP_STATES.indexOf('stable-restored') ? [c.writes.find(setBack)] : []);
    });

    it(`${state}: canary rollback finishes it (exit 0); taken on before it was recorded, the story is the operator's (exit 4)`, async () => {
      const c = await crashedIn(state);
      const { report, lease } = await rollback(c);
      expect(report.exitCode).toBe(0);
      expect(report.result).toBe('rolled-back-after-promotion');
      const record = await finished(c);
      expect(record.stop?.token).toMatch(/^rollback by alice/);
      expect(lease.released).toBe(1);
      if (state === 'recorded') {
        expect(record.outcome).toMatchObject({ exitCode: 7, reason: WATCH_REASON });
        expect(record.watch?.result).toBe('rolled-back');
      } else {
        expect(record.outcome).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 4, reason: 'rolled back after promotion by alice: pager' });
        expect(record.watch).toMatchObject({ result: 'rolled-back-by-operator', rolledBackBy: 'alice' });
        expect(record.rollback).toMatchObject({ requestedBy: 'alice', reason: 'pager' });
      }
    });
  }

  it("a record the watch's earlier separate path left (rolling-back, a watch, no stop): canary rollback sets stable back through the machine", async () => {
    const c = await crashedIn('requested');
    const { stop: _none, ...legacy } = (await c.load())!.record;
    await c.save(legacy, (await c.load())!.version);
    const { report } = await rollback(c);
    expect(report).toMatchObject({ exitCode: 0, result: 'rolled-back-after-promotion' });
    const record = await finished(c);
    expect(record.stop).toMatchObject({ result: 'rolled-back-after-promotion', restoreImage: OLD });
    expect(record.outcome).toMatchObject({ exitCode: 4, reason: 'rolled back after promotion by alice: pager' });
    expect(c.writes.filter(setBack)).toHaveLength(1);
  });

  it('status of an unfinished rollback after promotion: UNFINISHED STOP with the command that finishes it, exit 5', async () => {
    const c = await crashedIn('stable-restored');
    const record = (await c.load())!.record;
    const now = START + 120_000;
    const view = statusView({ record, liveWeight: 0, lease: null, now });
    expect(statusExitCode(view)).toBe(5);
    const text = renderStatus(view, now);
    expect(text).toContain('UNFINISHED STOP');
    expect(text).toContain('stable-restored');
    expect(text).toContain('canary rollback checkout -n shop');
  });
});

describe("the watch's breach racing canary rollback: one story, stable set back once", () => {
  it('rollback takes the stop on while the watch is about to write stable: the watch loses (exit 4), the operator finishes (exit 0)', async () => {
    const c = new HookedCluster('shop', names, OLD);
    let rb: Awaited<ReturnType<typeof rollback>> | null = null;
    c.hooks.promote = async () => {
      rb = await rollback(c);
    };
    const { engine } = checkoutEngine({ policy: watchPolicy(), metrics: new ScriptedMetrics(START, degradesAfterPromotion), clock: new VirtualClock(START), cluster: c });
    const outcome = await engine.run();
    expect(rb!.report.exitCode).toBe(0);
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4 });
    expect(outcome.reason).toBe('rolled back by an operator by alice: pager');
    const record = await finished(c);
    expect(record.outcome).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 4 });
    expect(record.watch).toMatchObject({ result: 'rolled-back-by-operator', rolledBackBy: 'alice' });
    expect(c.writes.filter(setBack)).toHaveLength(1);
  });

  it("rollback lands while the watch's own 0% write is in flight: the operator's story; the deploy exits 4 naming them", async () => {
    const c = new HookedCluster('shop', names, OLD);
    let rb: Awaited<ReturnType<typeof rollback>> | null = null;
    const { engine } = checkoutEngine({
      policy: watchPolicy(),
      metrics: new ScriptedMetrics(START, degradesAfterPromotion),
      clock: new VirtualClock(START),
      cluster: c,
      onEvent: (e) => {
        if (e.type === 'log' && e.message.startsWith('post-promotion watch: ')) {
          c.hooks.stop = async () => {
            rb = await rollback(c);
          };
        }
      },
    });
    const outcome = await engine.run();
    expect(rb!.report.exitCode).toBe(0);
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4 });
    expect(outcome.reason).toContain('rolled back by an operator by alice: pager');
    const record = await finished(c);
    expect(record.outcome).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 4 });
    expect(c.writes.filter(setBack)).toHaveLength(1);
  });

  it('rollback after the watch recorded its rollback finds it done: exit 0, the watch keeps exit 7, stable not written again', async () => {
    const c = new HookedCluster('shop', names, OLD);
    const { engine } = checkoutEngine({ policy: watchPolicy(), metrics: new ScriptedMetrics(START, degradesAfterPromotion), clock: new VirtualClock(START), cluster: c });
    expect(await engine.run()).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 7 });
    const { report, lines } = await rollback(c);
    expect(report).toMatchObject({ exitCode: 0, alreadyRolledBack: true, result: 'rolled-back-after-promotion' });
    expect(lines.join('\n')).toContain('was already rolled back after promotion');
    const record = await finished(c);
    expect(record.outcome).toMatchObject({ exitCode: 7 });
    expect(c.writes.filter(setBack)).toHaveLength(1);
  });

  it("two rollbacks during the watch: the second takes the stop on at the first's stable write; one story, stable set back once, both exit 0", async () => {
    const c = new HookedCluster('shop', names, NEW);
    c.weight = 0;
    const watching = await crashedIn('requested');
    const base = (await watching.load())!.record;
    const { stop: _none, outcome: _o, rollback: _r, ...rest } = base;
    await c.save({ ...rest, phase: 'watching', watch: { ...base.watch!, result: undefined, rolledBackBy: undefined } }, null);
    let second: Awaited<ReturnType<typeof rollback>> | null = null;
    c.hooks.promote = async () => {
      second = await rollback(c, 'bob');
    };
    const first = await rollback(c, 'alice');
    expect(second!.report.exitCode).toBe(0);
    expect(first.report.exitCode).toBe(0);
    expect(first.lines.join('\n')).toContain('another stopper (rollback by bob');
    const record = await finished(c);
    expect(record.stop?.token).toMatch(/^rollback by bob/);
    expect(record.outcome).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 4, reason: 'rolled back after promotion by bob: pager' });
    expect(record.watch).toMatchObject({ result: 'rolled-back-by-operator', rolledBackBy: 'bob' });
    expect(c.writes.filter(setBack)).toHaveLength(1);
  });
});
