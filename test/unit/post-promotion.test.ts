import { describe, expect, it } from 'vitest';
import { judgeWatch, watchMetrics, type StableFigures } from '../../src/analysis/stable-watch.js';
import { CanaryError } from '../../src/errors.js';
import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { targetNames, type Policy } from '../../src/policy/policy.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import { type IncidentSink, type StableWriteGuard } from '../../src/rollout/ports.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { statusView, renderStatus } from '../../src/report/status-view.js';
import { checkoutEngine } from '../support/checkout-engine.js';
import { thresholdPolicy } from '../support/policies.js';
import { healthy, ScriptedMetrics, type Scenario } from '../support/scripted-metrics.js';

const START = Date.parse('2026-01-15T10:00:00Z');
/** The default plan's 40 minutes of steps: the promotion happens at minute 40. */
const PROMOTED_AT_MINUTE = 40;

const watchPolicy = (block = 'postPromotion: { duration: 10m }'): Policy =>
  thresholdPolicy(`apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  ${block}\n`);

function invalid(block: string): string {
  try {
    watchPolicy(block);
  } catch (err) {
    if (err instanceof CanaryError) return [err.message, ...err.details].join('\n');
    throw err;
  }
  throw new Error('expected the policy to be refused');
}

describe('spec.postPromotion in the policy', () => {
  it('defaults: the interval, a 30m baseline, the critical error-rate and latency metrics, 2 breaches in a row', () => {
    expect(watchPolicy().postPromotion).toEqual({ durationMs: 600_000, intervalMs: 60_000, baselineMs: 1_800_000, metrics: ['error-rate', 'p95-latency'], failureLimit: 2 });
    expect(watchPolicy('postPromotion: { duration: 1h, interval: 2m, baseline: 1h, metrics: [error-rate], failureLimit: 3 }').postPromotion).toEqual({
      durationMs: 3_600_000,
      intervalMs: 120_000,
      baselineMs: 3_600_000,
      metrics: ['error-rate'],
      failureLimit: 3,
    });
  });

  it('names the field and what was expected', () => {
    expect(invalid('postPromotion: { duration: soon }')).toContain('spec.postPromotion.duration: expected how long to watch stable after promotion like "30s", "10m" or "1h", got "soon"');
    expect(invalid('postPromotion: { interval: 1m }')).toContain('spec.postPromotion.duration');
    expect(invalid('postPromotion: { duration: 10m, metrics: [memory] }')).toContain(
      'spec.postPromotion.metrics[0]: expected the name of an error-rate or latency metric of spec.analysis.metrics ("error-rate", "p95-latency"), got "memory"',
    );
    expect(invalid('postPromotion: { duration: 30s }')).toContain('spec.postPromotion.duration: expected at least one interval (60s)');
    expect(invalid('postPromotion: { duration: 10m, failureLimit: 0 }')).toContain('spec.postPromotion.failureLimit: expected a whole number from 1 to 100');
    expect(invalid('postPromotion: { duration: 10m, every: 1m }')).toContain('every');
  });
});

const figures = (requests: number | null, errors: number, p95: number | null): StableFigures => ({
  at: '2026-01-15T10:50:00.000Z',
  windowMs: 60_000,
  requests,
  errors,
  errorRate: requests ? errors / requests : null,
  latency: [{ metric: 'p95-latency', quantile: 0.95, seconds: p95 }],
  problems: [],
});

describe("the watch's decision at one check (fixed limits against stable's baseline)", () => {
  const metrics = watchMetrics(watchPolicy());
  const baseline = figures(60_000, 300, 0.19);

  it('passes while stable stays within maxIncrease of its baseline, the caps and maxRatio', () => {
    const judged = judgeWatch(metrics, baseline, figures(2_000, 40, 0.25), 20);
    expect(judged.verdict).toBe('pass');
    expect(judged.results.map((r) => r.verdict)).toEqual(['pass', 'pass', 'pass', 'pass']);
  });

  it('fails on an error rate more than maxIncrease above the baseline, and says by how much', () => {
    const judged = judgeWatch(metrics, baseline, figures(2_000, 90, 0.19), 20);
    expect(judged.verdict).toBe('fail');
    const breach = judged.results.find((r) => r.verdict === 'fail' && r.check.startsWith('error rate ≤ baseline'));
    expect(breach?.reason).toBe("stable's error rate 4.5% vs 0.5% before the rollout: +4 points, more than the 3 points allowed");
  });

  it('fails on latency above maxRatio × the baseline', () => {
    const judged = judgeWatch(metrics, baseline, figures(2_000, 10, 0.4), 20);
    expect(judged.verdict).toBe('fail');
    expect(judged.results.find((r) => r.verdict === 'fail')?.check).toBe('P95 ≤ 1.5× baseline');
  });

  it('too little traffic is inconclusive, never a breach, however bad the few requests were', () => {
    const judged = judgeWatch(metrics, baseline, figures(10, 10, 9), 20);
    expect(judged.verdict).toBe('inconclusive');
    expect(judged.results.every((r) => r.verdict === 'inconclusive')).toBe(true);
    expect(judged.results[0]?.reason).toBe('now: stable served 10 requests in 1m; at least 20 are needed to judge');
    expect(judgeWatch(metrics, baseline, figures(null, 0, null), 20).verdict).toBe('inconclusive');
  });

  it('a thin baseline leaves the comparisons inconclusive, but the caps (max) still apply', () => {
    const thin = figures(5, 0, 0.19);
    const fine = judgeWatch(metrics, thin, figures(2_000, 20, 0.2), 20);
    expect(fine.verdict).toBe('inconclusive');
    const capped = judgeWatch(metrics, thin, figures(2_000, 200, 0.2), 20);
    expect(capped.verdict).toBe('fail');
    expect(capped.results.find((r) => r.verdict === 'fail')?.check).toBe('error rate ≤ 5%');
  });
});

/** Stable degrades once it runs the new image (after the promotion), as Flagger #616 describes. */
const degradesAfterPromotion: Scenario = (minute, side) =>
  side === 'stable' && minute > PROMOTED_AT_MINUTE ? { requests: 2400, errors: 240, p95: 0.2 } : healthy(minute, side);

async function watched(scenario: Scenario, opts: { policy?: Policy; cluster?: MemoryCluster; incidents?: IncidentSink[] } = {}) {
  const { engine, cluster, events } = checkoutEngine({
    policy: opts.policy ?? watchPolicy(),
    metrics: new ScriptedMetrics(START, scenario),
    clock: new VirtualClock(START),
    ...(opts.cluster && { cluster: opts.cluster }),
    ...(opts.incidents && { incidents: opts.incidents }),
  });
  const outcome = await engine.run();
  return { outcome, cluster, events, record: (await cluster.load())?.record };
}

describe('the post-promotion watch in the engine', () => {
  it('records the baseline at the start, watches for the duration, then the promotion is final: exit 0', async () => {
    const { outcome, cluster, record } = await watched(healthy);
    expect(outcome).toMatchObject({ result: 'promoted', exitCode: 0 });
    expect(outcome.reason).toContain('post-promotion watch: 10 checks over 10m (10 passed, 0 inconclusive, 0 breached)');
    expect(record?.baseline).toMatchObject({ at: '2026-01-15T10:00:00.000Z', windowMs: 1_800_000, requests: 2160, errors: 11 });
    expect(record).toMatchObject({ phase: 'promoted', images: { stable: 'shop/checkout:2' }, watch: { result: 'passed', checks: 10, previousImage: 'shop/checkout:1' } });
    expect(cluster.stable).toBe('shop/checkout:2');
  });

  it('on a breach after promotion sets stable back to the previous image, records it, opens the incident: exit 7', async () => {
    const opened: RolloutRecord[] = [];
    const sink: IncidentSink = { name: 'test', open: async (r) => (opened.push(r), { sink: 'test', ok: true, message: 'ok' }) };
    const { outcome, cluster, record } = await watched(degradesAfterPromotion, { incidents: [sink] });
    expect(outcome).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 7, traffic: 'all traffic on stable, which runs shop/checkout:1 again' });
    expect(outcome.reason).toContain("rolled back after promotion by the post-promotion watch: error-rate: stable's error rate 10% (240 of 2,400 requests) is above the 5% limit; error-rate: stable's error rate 10% vs 0.51% before the rollout: +9.49 points");
    expect(outcome.reason).toContain('(2 breaching checks in a row)');
    expect(cluster.stable).toBe('shop/checkout:1');
    expect(cluster.writes.at(-1)).toBe('set Deployment shop/checkout image to shop/checkout:1 and wait until fully available');
    expect(record).toMatchObject({
      phase: 'rolled-back-after-promotion',
      images: { stable: 'shop/checkout:1', canary: 'shop/checkout:2' },
      watch: { result: 'rolled-back', checks: 2, failed: 2 },
      rollback: { stableRestore: { image: 'shop/checkout:1', done: true } },
      outcome: { exitCode: 7 },
    });
    expect(opened.map((r) => r.phase)).toEqual(['rolled-back-after-promotion']);
  });

  it('a watch with too little traffic is inconclusive throughout and never rolls back', async () => {
    const quiet: Scenario = (minute, side) => (side === 'stable' && minute > PROMOTED_AT_MINUTE ? { requests: 3, errors: 3, p95: 9 } : healthy(minute, side));
    const { outcome, cluster, record } = await watched(quiet);
    expect(outcome).toMatchObject({ result: 'promoted', exitCode: 0 });
    expect(record?.watch).toMatchObject({ result: 'inconclusive', checks: 10, inconclusive: 10, failed: 0 });
    expect(outcome.reason).toContain('no check could judge stable, so the promotion stands unproven');
    expect(cluster.stable).toBe('shop/checkout:2');
  });

  it('an operator rollback written to the record during the watch ends the deploy with exit 4, touching nothing', async () => {
    class OperatorMidWatch extends MemoryCluster {
      override async save(record: RolloutRecord, expected: string | null): Promise<string> {
        const version = await super.save(record, expected);
        if (record.phase === 'watching' && record.watch?.checks === 3) {
          const now = (await this.load())!;
          await super.save({ ...now.record, phase: 'rolling-back', rollback: { reason: 'pager', requestedBy: 'alice', at: now.record.updatedAt } }, now.version);
        }
        return version;
      }
    }
    const cluster = new OperatorMidWatch('shop', targetNames('checkout', {}), 'shop/checkout:1');
    const { outcome } = await watched(healthy, { cluster });
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4 });
    expect(outcome.reason).toContain('rolled back by an operator by alice: pager');
    // Stable is the operator's rollback's to set back, not this deploy's.
    expect(cluster.stable).toBe('shop/checkout:2');
  });

  it('status during the watch shows time left, the latest figures and the baseline', async () => {
    let seen: RolloutRecord | undefined;
    const { engine, cluster } = checkoutEngine({
      policy: watchPolicy(),
      metrics: new ScriptedMetrics(START, healthy),
      clock: new VirtualClock(START),
      onEvent: (e, c) => {
        if (e.type === 'log' && e.message.startsWith('post-promotion check 4 ')) void c.load().then((s) => (seen ??= s?.record));
      },
    });
    await engine.run();
    expect(cluster.stable).toBe('shop/checkout:2');
    expect(seen?.phase).toBe('watching');
    const now = Date.parse(seen!.watch!.endsAt) - 6 * 60_000;
    const text = renderStatus(statusView({ record: seen!, liveWeight: 0, lease: { holder: 'deploy', renewTime: null, expired: false }, now }), now);
    expect(text).toContain('phase:   watching');
    expect(text).toContain('watch:   watching stable after promotion, 6m left');
    expect(text).toContain('latest: PASS at');
    expect(text).toContain('baseline: stable over the 30m before the rollout: error rate 0.51% (11 of 2,160 requests)');
    expect(text).toContain("sets it back now");
  });

  it("the watch's own write to stable loses when the record changed after it wrote its rollback (a delayed write never clobbers): exit 4", async () => {
    class OperatorBeforeWrite extends MemoryCluster {
      override async promoteStable(image: string, guard?: Parameters<MemoryCluster['promoteStable']>[1]): Promise<void> {
        if (image === 'shop/checkout:1') {
          const now = (await this.load())!;
          // An operator's `canary rollback` takes the stop on (its token) between the watch's fence check and its write.
          if (now.record.stop) await this.save({ ...now.record, stop: { ...now.record.stop, token: 'rollback by alice', requestedBy: 'alice' }, rollback: { reason: 'pager', requestedBy: 'alice', at: now.record.updatedAt } }, now.version);
        }
        return super.promoteStable(image, guard);
      }
    }
    const cluster = new OperatorBeforeWrite('shop', targetNames('checkout', {}), 'shop/checkout:1');
    const { outcome } = await watched(degradesAfterPromotion, { cluster });
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4 });
    expect(outcome.reason).toContain('then the rollout was taken over (rollback by alice)');
    expect(cluster.stable).toBe('shop/checkout:2');
    expect(cluster.writes.filter((w) => w.includes('image to shop/checkout:1'))).toEqual([]);
  });

  it('Prometheus unreachable during the watch ends it early: the promotion stands, nothing is set back, exit 5', async () => {
    const metrics = new ScriptedMetrics(START, healthy);
    const { engine, cluster } = checkoutEngine({
      policy: watchPolicy(),
      metrics,
      clock: new VirtualClock(START),
      onEvent: (e) => {
        if (e.type === 'log' && e.message.startsWith('post-promotion check 2 ')) metrics.failWith = new CanaryError('unreachable', 'Prometheus at http://prometheus:9090 unreachable after 3 attempts');
      },
    });
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'promoted', exitCode: 5 });
    expect(outcome.reason).toContain('the post-promotion watch ended early after 2 checks (2 passed, 0 inconclusive, 0 breached): Prometheus at http://prometheus:9090 unreachable');
    expect((await cluster.load())?.record).toMatchObject({ phase: 'promoted', watch: { result: 'ended-early', checks: 2 } });
    expect(cluster.stable).toBe('shop/checkout:2');
  });

  it('--resume of a deploy that died during the watch continues it to its recorded end, never re-running a step', async () => {
    let saved: { record: RolloutRecord; at: number } | undefined;
    const first = checkoutEngine({
      policy: watchPolicy(),
      metrics: new ScriptedMetrics(START, healthy),
      clock: new VirtualClock(START),
      onEvent: (e, c) => {
        if (e.type === 'log' && e.message.startsWith('post-promotion check 3 ')) void c.load().then((s) => (saved ??= s ? { record: s.record, at: e.at } : undefined));
      },
    });
    await first.engine.run();
    expect(saved?.record.phase).toBe('watching');
    const before = saved!.record.watch!.checks;
    expect(before).toBeGreaterThanOrEqual(2);
    const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:2');
    await cluster.save(saved!.record, null);
    cluster.weight = 0;
    const second = checkoutEngine({ policy: watchPolicy(), metrics: new ScriptedMetrics(START, healthy), clock: new VirtualClock(saved!.at), cluster });
    const outcome = await second.engine.run((await cluster.load())!);
    expect(outcome).toMatchObject({ result: 'promoted', exitCode: 0 });
    expect(outcome.reason).toContain('; post-promotion watch: ');
    const record = (await cluster.load())?.record;
    expect(record?.watch).toMatchObject({ result: 'passed', startedAt: saved!.record.watch!.startedAt, endsAt: saved!.record.watch!.endsAt });
    expect(record?.watch?.checks).toBeGreaterThan(before);
    expect(cluster.writes.filter((w) => w.startsWith('patch Ingress') && !w.endsWith('"0"'))).toEqual([]);
  });

  it('a second signal during the watch records the promotion with the watch ended early, never a stop', async () => {
    let hung = false;
    class HangsMidWatch extends MemoryCluster {
      override async save(record: RolloutRecord, expected: string | null): Promise<string> {
        if (!hung && record.phase === 'watching' && record.watch?.checks === 2) {
          hung = true;
          return new Promise<string>(() => undefined);
        }
        return super.save(record, expected);
      }
    }
    const cluster = new HangsMidWatch('shop', targetNames('checkout', {}), 'shop/checkout:1');
    const { engine } = checkoutEngine({ policy: watchPolicy(), metrics: new ScriptedMetrics(START, healthy), clock: new VirtualClock(START), cluster });
    void engine.run();
    while (!hung) await new Promise((resolve) => setImmediate(resolve));
    await engine.recordForcedExit();
    const record = (await cluster.load())?.record;
    expect(record).toMatchObject({ phase: 'promoted', images: { stable: 'shop/checkout:2' }, watch: { result: 'ended-early' }, outcome: { result: 'promoted', exitCode: 4 } });
    expect(record?.stop).toBeUndefined();
    expect(record?.outcome?.reason).toContain('the post-promotion watch ended early after 2 checks: exited on a second signal');
  });

  it('a breach whose rollback cannot be recorded (API unreachable) is reported as failed with the breach, never as a promotion, and the incident is opened', async () => {
    class RecordUnreachable extends MemoryCluster {
      override async save(record: RolloutRecord, expected: string | null): Promise<string> {
        if (record.phase === 'rolling-back' && record.watch) throw new CanaryError('unreachable', 'the Kubernetes API was unreachable after 10 attempts');
        return super.save(record, expected);
      }
    }
    const opened: RolloutRecord[] = [];
    const sink: IncidentSink = { name: 'test', open: async (r) => (opened.push(r), { sink: 'test', ok: true, message: 'ok' }) };
    const cluster = new RecordUnreachable('shop', targetNames('checkout', {}), 'shop/checkout:1');
    const { outcome } = await watched(degradesAfterPromotion, { cluster, incidents: [sink] });
    expect(outcome).toMatchObject({ result: 'failed', exitCode: 5, traffic: 'all traffic on stable, which still runs shop/checkout:2' });
    expect(outcome.reason).toContain("the post-promotion watch found a breach (error-rate: stable's error rate 10%");
    expect(outcome.reason).toContain('set it back with `canary rollback checkout -n shop');
    expect(cluster.stable).toBe('shop/checkout:2');
    expect(opened).toHaveLength(1);
  });
});

describe('the watch ending in other ways', () => {
  it('SIGTERM during the watch ends it early; the promotion stands and nothing is set back: exit 4', async () => {
    const cancel = new AbortController();
    const { engine, cluster } = checkoutEngine({
      policy: watchPolicy(),
      metrics: new ScriptedMetrics(START, degradesAfterPromotion),
      clock: new VirtualClock(START),
      extra: { signal: cancel.signal },
      onEvent: (e) => {
        if (e.type === 'log' && e.message.startsWith('post-promotion check 1 ')) cancel.abort();
      },
    });
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'promoted', exitCode: 4 });
    expect(outcome.reason).toContain('the post-promotion watch ended early after 1 checks (0 passed, 0 inconclusive, 1 breached): cancelled');
    expect(cluster.stable).toBe('shop/checkout:2');
    expect((await cluster.load())?.record.watch?.result).toBe('ended-early');
  });

  it('--resume of a deploy that died while its watch set stable back finishes that rollback: exit 7', async () => {
    let dying: RolloutRecord | undefined;
    class DiesBeforeStableWrite extends MemoryCluster {
      override async promoteStable(image: string, guard?: StableWriteGuard): Promise<void> {
        if (image === 'shop/checkout:1' && !dying) {
          dying = (await this.load())!.record;
          throw new Error('process killed');
        }
        return super.promoteStable(image, guard);
      }
    }
    await watched(degradesAfterPromotion, { cluster: new DiesBeforeStableWrite('shop', targetNames('checkout', {}), 'shop/checkout:1') });
    expect(dying).toMatchObject({ phase: 'rolling-back', watch: { result: 'rolled-back' } });
    const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:2');
    await cluster.save(dying!, null);
    cluster.weight = 0;
    const { engine } = checkoutEngine({ policy: watchPolicy(), metrics: new ScriptedMetrics(START, degradesAfterPromotion), clock: new VirtualClock(Date.parse(dying!.updatedAt)), cluster });
    const outcome = await engine.run((await cluster.load())!);
    expect(outcome).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 7 });
    expect(cluster.stable).toBe('shop/checkout:1');
    expect((await cluster.load())?.record).toMatchObject({ phase: 'rolled-back-after-promotion', images: { stable: 'shop/checkout:1' } });
  });
});
