import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { targetNames, type Policy } from '../../src/policy/policy.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import type { RolloutEngine } from '../../src/rollout/engine.js';
import type { RolloutEvent } from '../../src/rollout/events.js';
import type { IncidentSink, StoredRecord } from '../../src/rollout/ports.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { healthy, ScriptedMetrics, type Scenario } from '../support/scripted-metrics.js';
import { defaultPolicy as defaultSequentialPolicy, thresholdPolicy } from '../support/policies.js';
import { checkoutEngine } from '../support/checkout-engine.js';
import { START } from '../support/times.js';

// These tests are about the engine's transitions, judged with fixed thresholds so each check's
// verdict follows from its own window; the sequential judges have their own tests below.
const defaultPolicy = () => thresholdPolicy();

const mergedPolicy = (yamlText: string): Policy => thresholdPolicy(yamlText);

/** Records every write, state saves included, in the order the engine made them. */
class OrderedCluster extends MemoryCluster {
  readonly order: string[] = [];
  override async setWeight(weight: number): Promise<void> {
    this.order.push(`weight ${weight}`);
    return super.setWeight(weight);
  }
  override async stop(marker: string): ReturnType<MemoryCluster['stop']> {
    this.order.push('weight 0');
    return super.stop(marker);
  }
  override async save(record: Parameters<MemoryCluster['save']>[0], expected: string | null): Promise<string> {
    this.order.push(`save ${record.checks.length}`);
    return super.save(record, expected);
  }
}

class FailingRouter extends MemoryCluster {
  failZero = false;
  override async stop(marker: string): ReturnType<MemoryCluster['stop']> {
    if (this.failZero) throw new CanaryError('unreachable', 'Kubernetes API unreachable after 4 attempts');
    return super.stop(marker);
  }
  override async setWeight(weight: number): Promise<void> {
    if (this.failZero && weight === 0) throw new CanaryError('unreachable', 'Kubernetes API unreachable after 4 attempts');
    return super.setWeight(weight);
  }
}

interface RunOptions {
  policy?: Policy;
  scenario?: Scenario;
  incidents?: IncidentSink[];
  signal?: AbortSignal;
  onCancel?: 'rollback' | 'leave';
  cluster?: MemoryCluster;
  metrics?: ScriptedMetrics;
  onEvent?: (e: RolloutEvent, cluster: MemoryCluster) => void;
}

/** The engine run() is driving, for hooks that act on it mid-run (the forced-exit hook). */
let current: RolloutEngine | undefined;

async function run(opts: RunOptions = {}, resume?: StoredRecord) {
  const policy = opts.policy ?? defaultPolicy();
  const metrics = opts.metrics ?? new ScriptedMetrics(START, opts.scenario ?? healthy);
  const { engine, cluster, events } = checkoutEngine({
    policy,
    metrics,
    clock: new VirtualClock(START),
    ...(opts.cluster && { cluster: opts.cluster }),
    ...(opts.incidents && { incidents: opts.incidents }),
    ...(opts.onEvent && { onEvent: opts.onEvent }),
    extra: { ...(opts.signal && { signal: opts.signal }), ...(opts.onCancel && { onCancel: opts.onCancel }) },
  });
  current = engine;
  const outcome = await engine.run(resume);
  const stored = await cluster.load();
  return { outcome, cluster, events, record: stored?.record, metrics };
}

const weights = (cluster: MemoryCluster) =>
  cluster.writes.filter((w) => w.startsWith('patch Ingress')).map((w) => Number(/→ "(\d+)"/.exec(w)?.[1]));

describe('rollout engine', () => {
  it('promotes a healthy canary through 10/25/50/100 with one check a minute', async () => {
    const { outcome, cluster, record, events } = await run();
    expect(outcome.result).toBe('promoted');
    expect(outcome.exitCode).toBe(0);
    expect(weights(cluster)).toEqual([10, 25, 50, 100, 0]);
    expect(record?.checks).toHaveLength(40);
    expect(record?.phase).toBe('promoted');
    expect(record?.images.stable).toBe('shop/checkout:2');
    expect(cluster.stable).toBe('shop/checkout:2');
    expect(cluster.canaryReplicas).toBe(0);
    // Checks happen a minute apart on the virtual clock: 15 at 10%, 10 at 25%, 15 at 50%.
    const checkTimes = events.flatMap((e) => (e.type === 'check' ? [Date.parse(e.check.at)] : []));
    expect(checkTimes[0]).toBe(START + 60_000);
    expect(checkTimes[39]).toBe(START + 40 * 60_000);
    expect(record?.checks.map((c) => c.weight).filter((w, i, a) => a.indexOf(w) === i)).toEqual([10, 25, 50]);
  });

  it('records each check with canary, stable, limit, verdict and the PromQL it ran', async () => {
    const { record } = await run();
    const first = record?.checks[0];
    const errorVsStable = first?.results.find((r) => r.check.startsWith('error rate ≤ stable'));
    expect(errorVsStable).toMatchObject({ metric: 'error-rate', verdict: 'pass', critical: true });
    expect(errorVsStable?.canary).toBeCloseTo(1 / 240, 6);
    expect(errorVsStable?.stable).toBeCloseTo(11 / 2160, 6);
    expect(errorVsStable?.threshold).toBeCloseTo(11 / 2160 + 0.03, 6);
    expect(errorVsStable?.queries.join('\n')).toContain(
      'sum(((nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary!="",status=~"5.."} - last_over_time(nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary!="",status=~"5.."}[1h] offset 1m)) unless',
    );
    const memory = first?.results.find((r) => r.metric === 'memory');
    expect(memory).toMatchObject({ verdict: 'info', critical: false, canary: 200e6, stable: 210e6 });
  });

  it('rolls back at the first check after the error rate rises, sending traffic to 0% before anything else', async () => {
    const regression: Scenario = (minute, side) =>
      side === 'canary' && minute > 20 ? { requests: 600, errors: 72, p95: 0.2 } : healthy(minute, side);
    const order: string[] = [];
    const { outcome, cluster, record } = await run({
      scenario: regression,
      onEvent: (e) => {
        if (e.type === 'traffic' || e.type === 'phase' || e.type === 'finished') order.push(`${e.type}:${'weight' in e ? e.weight : e.type === 'phase' ? e.phase : ''}`);
      },
    });
    expect(outcome).toMatchObject({ result: 'rolled-back', exitCode: 3, traffic: 'canary at 0%, all traffic on stable' });
    expect(outcome.reason).toContain('error-rate: canary error rate 12% is above the 5% limit');
    expect(record?.checks).toHaveLength(21);
    expect(record?.checks.at(-1)).toMatchObject({ weight: 25, verdict: 'fail' });
    expect(weights(cluster)).toEqual([10, 25, 0]);
    // The weight goes to 0 before the rolling-back phase is even announced or recorded.
    expect(order.indexOf('traffic:0')).toBeLessThan(order.indexOf('phase:rolling-back'));
    expect(record?.rollback).toMatchObject({ stableVerified: true });
    expect(cluster.canaryReplicas).toBe(0);
  });

  it('rolls back a canary whose P95 is 2.5× stable at the first check of 10%', async () => {
    const slow: Scenario = (minute, side) => (side === 'canary' ? { ...healthy(minute, side), p95: 0.475 } : healthy(minute, side));
    const { outcome, record } = await run({ scenario: slow });
    expect(outcome.exitCode).toBe(3);
    expect(record?.checks).toHaveLength(1);
    expect(outcome.reason).toContain('p95-latency: canary P95 475ms vs stable 190ms: 2.5× stable, more than the 1.5× allowed');
  });

  it('treats no canary traffic as inconclusive, never a pass, and rolls back at the inconclusive limit', async () => {
    const idle: Scenario = (minute, side) => (side === 'canary' ? { requests: 0, errors: 0, p95: null } : healthy(minute, side));
    const { outcome, record } = await run({ scenario: idle });
    expect(outcome.exitCode).toBe(3);
    expect(record?.checks.map((c) => c.verdict)).toEqual(Array(5).fill('inconclusive'));
    expect(outcome.reason).toContain('5 checks in a row were inconclusive');
    expect(outcome.reason).toContain('canary served 0 requests in the last 1m; at least 20 are needed to judge');
  });

  it('treats an empty Prometheus answer (no series yet) like no traffic', async () => {
    const empty: Scenario = (minute, side) => (side === 'canary' ? { requests: null, errors: 0, p95: null } : healthy(minute, side));
    const { record } = await run({ scenario: empty });
    expect(record?.checks[0]?.results.find((r) => r.metric === 'error-rate')?.reason).toContain('canary has no data for the last 1m: no requests, or fewer than two scrapes in the window');
  });

  it('holds a step past its planned checks until a check passes', async () => {
    // Minutes 14-16 are quiet: the 10% step's last planned check is inconclusive, so it waits.
    const lull: Scenario = (minute, side) =>
      side === 'canary' && minute >= 14 && minute <= 16 ? { requests: 5, errors: 0, p95: 0.2 } : healthy(minute, side);
    const { outcome, record, events } = await run({ scenario: lull });
    expect(outcome.result).toBe('promoted');
    const at10 = record?.checks.filter((c) => c.weight === 10) ?? [];
    expect(at10).toHaveLength(17);
    expect(at10.at(-1)?.verdict).toBe('pass');
    expect(events.some((e) => e.type === 'log' && e.message.includes('held past its 15 planned checks'))).toBe(true);
  });

  it('with failureLimit 2 consecutive, a single failure followed by a pass does not roll back', async () => {
    const policy = mergedPolicy(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  analysis:
    failureLimit: 2
`);
    const blip: Scenario = (minute, side) =>
      side === 'canary' && (minute === 3 || minute === 7) ? { requests: 240, errors: 40, p95: 0.2 } : healthy(minute, side);
    expect((await run({ policy, scenario: blip })).outcome.result).toBe('promoted');
  });

  it('with countFailures total, failures far apart add up to the limit', async () => {
    const policy = mergedPolicy(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  analysis:
    failureLimit: 2
    countFailures: total
`);
    const blip: Scenario = (minute, side) =>
      side === 'canary' && (minute === 3 || minute === 7) ? { requests: 240, errors: 40, p95: 0.2 } : healthy(minute, side);
    const { outcome, record } = await run({ policy, scenario: blip });
    expect(outcome.exitCode).toBe(3);
    expect(record?.checks).toHaveLength(7);
    expect(outcome.reason).toContain('(2 failed checks)');
  });

  it('an advisory breach is reported but never rolls back', async () => {
    const policy = mergedPolicy(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  analysis:
    metrics:
      - { name: error-rate, type: error-rate, max: 5% }
      - { name: memory, type: query, query: memory, unit: bytes, maxRatio: 1.2 }
`);
    const fat: Scenario = (minute, side) => ({ ...healthy(minute, side), memory: side === 'canary' ? 900e6 : 200e6 });
    const { outcome, record } = await run({ policy, scenario: fat });
    expect(outcome.result).toBe('promoted');
    expect(record?.checks[0]?.results.find((r) => r.metric === 'memory')).toMatchObject({ verdict: 'fail', critical: false });
  });

  it('when Prometheus cannot be reached, sends the canary to 0% and exits 5 saying where traffic is', async () => {
    const metrics = new ScriptedMetrics(START, healthy);
    const { outcome, cluster } = await run({
      metrics,
      onEvent: (e) => {
        if (e.type === 'check' && e.check.index === 3) {
          metrics.failWith = new CanaryError('unreachable', 'Prometheus at http://prom:9090 is unreachable after 4 attempts: ECONNREFUSED');
        }
      },
    });
    expect(outcome).toMatchObject({ result: 'failed', exitCode: 5, traffic: 'canary at 0%, all traffic on stable' });
    expect(outcome.reason).toContain('cannot judge the canary: Prometheus at http://prom:9090 is unreachable');
    expect(weights(cluster)).toEqual([10, 0]);
  });

  it('when the canary cannot be sent to 0%, says so and exits 5', async () => {
    const policy = defaultPolicy();
    const cluster = new FailingRouter('shop', targetNames('checkout', {}), 'shop/checkout:1');
    cluster.failZero = true;
    const slow: Scenario = (minute, side) => (side === 'canary' ? { ...healthy(minute, side), p95: 3 } : healthy(minute, side));
    cluster.canaryReplicas = 1;
    const { outcome } = await run({ policy, cluster, scenario: slow });
    expect(outcome.exitCode).toBe(5);
    expect(outcome.traffic).toContain('canary weight NOT confirmed at 0% (no read got through; canary last set to 10%)');
    expect(outcome.traffic).toContain("run `canary rollback checkout -n shop --reason '...'`");
    // Never a scale-down or a rollback record while no read showed 0%.
    expect(cluster.canaryReplicas).toBeGreaterThan(0);
    expect((await cluster.load())?.record.rollback).toBeUndefined();
  });

  it("the deploy's own stop rides out a control-plane restart: 0% writes failing for 2 minutes, then confirmed (exit 3, not 5)", async () => {
    const clock = new VirtualClock(START);
    class RestartingApi extends MemoryCluster {
      downUntil: number | null = null;
      override async stop(marker: string): ReturnType<MemoryCluster['stop']> {
        if (this.downUntil === null) this.downUntil = clock.now() + 120_000;
        if (clock.now() < this.downUntil) throw new CanaryError('unreachable', 'Kubernetes API unreachable: ECONNREFUSED');
        return super.stop(marker);
      }
    }
    const cluster = new RestartingApi('shop', targetNames('checkout', {}), 'shop/checkout:1');
    const slow: Scenario = (minute, side) => (side === 'canary' ? { ...healthy(minute, side), p95: 3 } : healthy(minute, side));
    const { engine, events } = checkoutEngine({ policy: defaultPolicy(), metrics: new ScriptedMetrics(START, slow), clock, cluster });
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: 'rolled-back', exitCode: 3, traffic: 'canary at 0%, all traffic on stable' });
    const retries = events.filter((e) => e.type === 'log' && e.message.includes('still trying, for up to'));
    expect(retries.length).toBeGreaterThan(3);
    expect((await cluster.load())?.record).toMatchObject({ phase: 'rolled-back', weight: 0 });
  });

  it('on cancellation routes the canary to 0% and exits 4; with leave, keeps the weight', async () => {
    for (const onCancel of ['rollback', 'leave'] as const) {
      const controller = new AbortController();
      const { outcome, cluster } = await run({
        signal: controller.signal,
        onCancel,
        onEvent: (e) => {
          if (e.type === 'check' && e.check.index === 17) controller.abort();
        },
      });
      expect(outcome.exitCode).toBe(4);
      expect(outcome.reason).toContain('aborted: cancelled');
      expect(cluster.weight).toBe(onCancel === 'rollback' ? 0 : 25);
    }
  });

  it('notices an operator rollback written to the record, stops and exits 4', async () => {
    const { outcome, cluster, record } = await run({
      onEvent: (e, c) => {
        if (e.type === 'check' && e.check.index === 4) {
          void (async () => {
            // As `canary rollback` does: traffic first (the fenced stop), then the record.
            await c.stop('rolled back by alice');
            const cur = await c.load();
            if (!cur) return;
            cur.record.rollback = { reason: 'pager: checkout 500s', requestedBy: 'alice', at: new Date().toISOString() };
            cur.record.phase = 'aborted';
            await c.save(cur.record, cur.version);
          })();
        }
      },
    });
    expect(outcome.exitCode).toBe(4);
    expect(outcome.reason).toBe('rolled back by an operator by alice: pager: checkout 500s');
    expect(cluster.weight).toBe(0);
    // The record is the operator's, written after check 4; nothing of ours lands after it.
    expect(record?.checks.length).toBe(4);
    expect(record?.phase).toBe('aborted');
  });

  it('opens incidents only after traffic is safe, and a failing sink does not change the exit code', async () => {
    const seenWeight: (number | null)[] = [];
    let clusterRef: MemoryCluster | undefined;
    const sinks: IncidentSink[] = [
      {
        name: 'ok',
        open: async (record) => {
          seenWeight.push(clusterRef?.weight ?? null);
          return { sink: 'ok', ok: true, url: `https://incidents.example/${record.id}`, message: 'opened' };
        },
      },
      { name: 'broken', open: async () => Promise.reject(new Error('HTTP 500 from webhook')) },
    ];
    const slow: Scenario = (minute, side) => (side === 'canary' ? { ...healthy(minute, side), p95: 3 } : healthy(minute, side));
    const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
    clusterRef = cluster;
    const { outcome, events } = await run({ scenario: slow, incidents: sinks, cluster });
    expect(outcome.exitCode).toBe(3);
    expect(seenWeight).toEqual([0]);
    const incidents = events.flatMap((e) => (e.type === 'incident' ? [e.result] : []));
    expect(incidents).toEqual([
      expect.objectContaining({ sink: 'ok', ok: true }),
      expect.objectContaining({ sink: 'broken', ok: false, message: 'HTTP 500 from webhook' }),
    ]);
  });

  it('at a 100% step, compares with stable no more but still holds absolute limits', async () => {
    const policy = mergedPolicy(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  steps:
    - { weight: 50, duration: 2m }
    - { weight: 100, duration: 2m }
`);
    const { outcome, record } = await run({ policy });
    expect(outcome.result).toBe('promoted');
    const at100 = record?.checks.find((c) => c.weight === 100);
    expect(at100?.results.find((r) => r.check.startsWith('error rate ≤ stable'))?.verdict).toBe('info');
    expect(at100?.results.find((r) => r.check === 'error rate ≤ 5%')?.verdict).toBe('pass');
  });

  it('resumes a rollout whose process died from the recorded step, keeping its checks', async () => {
    let snapshot: Promise<StoredRecord | null> | undefined;
    await run({
      onEvent: (e, c) => {
        // The record as it stood after check 20 (25% step), as a SIGKILL would have left it.
        if (e.type === 'check' && e.check.index === 20) snapshot = c.load();
      },
    });
    const died = await snapshot;
    expect(died?.record).toMatchObject({ phase: 'progressing', stepIndex: 1, weight: 25 });
    if (!died) throw new Error('no snapshot');

    const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
    cluster.weight = 25;
    await cluster.save(died.record, null);
    const stored = await cluster.load();
    if (!stored) throw new Error('not stored');
    const { outcome, record, events } = await run({ cluster }, stored);
    expect(outcome.result).toBe('promoted');
    // 20 checks from before, the 25% step again in full (10), then 50% (15).
    expect(record?.checks).toHaveLength(45);
    expect(record?.id).toBe(died.record.id);
    expect(weights(cluster)).toEqual([25, 50, 100, 0]);
    expect(events[0]).toMatchObject({ type: 'started', resumed: true });
  });

  it('finishes an interrupted rollback on resume, sending the canary to 0%', async () => {
    let snapshot: Promise<StoredRecord | null> | undefined;
    await run({
      onEvent: (e, c) => {
        if (e.type === 'check' && e.check.index === 3) snapshot = c.load();
      },
    });
    const died = await snapshot;
    if (!died) throw new Error('no snapshot');
    died.record.phase = 'rolling-back';
    died.record.rollback = { reason: 'error-rate: canary error rate 9% is above the 5% limit', requestedBy: 'ci', at: died.record.updatedAt };
    const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
    cluster.weight = 10;
    await cluster.save(died.record, null);
    const { outcome } = await run({ cluster }, (await cluster.load()) ?? undefined);
    expect(outcome).toMatchObject({ result: 'rolled-back', exitCode: 3, traffic: 'canary at 0%, all traffic on stable' });
    expect(cluster.weight).toBe(0);
  });
});

describe('rollout engine with the sequential judges (the shipped default)', () => {
  const sequential = () => defaultSequentialPolicy();

  it('promotes a healthy canary; checks still gathering evidence do not hold it back', async () => {
    const { outcome, record, events } = await run({ policy: sequential() });
    expect(outcome.result).toBe('promoted');
    expect(record?.checks).toHaveLength(40);
    expect(record?.checks.some((c) => c.verdict === 'fail' || c.verdict === 'inconclusive')).toBe(false);
    const errors = record?.checks.at(-1)?.results.find((r) => r.metric === 'error-rate');
    expect(errors).toMatchObject({ judge: 'sequential', verdict: 'pass' });
    expect(errors?.evidence).toMatchObject({ margin: 0.03 });
    // Whether a step advanced on a pass or on evidence still gathering, the log says which.
    const pendingAdvances = events.filter((e) => e.type === 'log' && e.message.includes('advances without proof of health'));
    const pendingStepEnds = [15, 25, 40].filter((i) => record?.checks[i - 1]?.verdict === 'pending');
    expect(pendingAdvances).toHaveLength(pendingStepEnds.length);
  });

  it('rolls back at the first check after a mid-step error jump, explaining it in words', async () => {
    const jump: Scenario = (minute, side) =>
      side === 'canary' && minute > 20 ? { requests: 600, errors: 72, p95: 0.2 } : healthy(minute, side);
    const { outcome, record } = await run({ policy: sequential(), scenario: jump });
    expect(outcome.exitCode).toBe(3);
    expect(record?.checks).toHaveLength(21);
    expect(outcome.reason).toMatch(
      /^error-rate: canary errors 12\.0% vs stable 0\.51% over the last check, since 10:20 UTC \(step 2, its 6th check\): worse than stable by more than the 3-point margin allows, with 99\.5% confidence/,
    );
  });

  it('rolls back a canary that is slow from the start at 10%', async () => {
    const slow: Scenario = (minute, side) => (side === 'canary' ? { ...healthy(minute, side), p95: 0.6 } : healthy(minute, side));
    const { outcome, record } = await run({ policy: sequential(), scenario: slow });
    expect(outcome.exitCode).toBe(3);
    expect(record?.checks.at(-1)?.weight).toBe(10);
    expect(outcome.reason).toContain("canary P95 above 1.5× stable's");
  });

  it('still treats a canary with no traffic as inconclusive and stops at the limit', async () => {
    const idle: Scenario = (minute, side) => (side === 'canary' ? { requests: null, errors: 0, p95: null } : healthy(minute, side));
    const { outcome, record } = await run({ policy: sequential(), scenario: idle });
    expect(outcome.exitCode).toBe(3);
    expect(record?.checks.map((c) => c.verdict)).toEqual(Array(5).fill('inconclusive'));
  });

  it('records a new step only before raising the weight, and a failing check only after the canary is at 0%', async () => {
    const cluster = new OrderedCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
    const jump: Scenario = (minute, side) =>
      side === 'canary' && minute > 20 ? { requests: 600, errors: 72, p95: 0.2 } : healthy(minute, side);
    await run({ policy: defaultSequentialPolicy(), scenario: jump, cluster });
    // Step 2: the record is saved first, then the weight goes up.
    const up = cluster.order.indexOf('weight 25');
    expect(cluster.order[up - 1]).toBe('save 15');
    // Check 21 fails: the very next write is the weight to 0; the check is saved after it.
    const down = cluster.order.indexOf('weight 0');
    expect(cluster.order.slice(down - 1, down + 2)).toEqual(['save 20', 'weight 0', 'save 21']);
  });

  it('never passes a failing canary when stable data goes missing: inconclusive, then rolled back', async () => {
    const blind: Scenario = (minute, side) =>
      minute > 15 ? (side === 'stable' ? { requests: null, errors: null, p95: null } : { requests: 600, errors: 600, p95: 9 }) : healthy(minute, side);
    const { outcome, record } = await run({ policy: defaultSequentialPolicy(), scenario: blind });
    expect(outcome.exitCode).toBe(3);
    const step2 = record?.checks.filter((c) => c.stepIndex === 1) ?? [];
    expect(step2.map((c) => c.verdict)).toEqual(Array(5).fill('inconclusive'));
    expect(outcome.reason).toContain('stable has no data for the last 1m');
  });

  it('never reads a missing error count as zero errors', async () => {
    const broken: Scenario = (minute, side) => ({ ...healthy(minute, side), errors: null });
    for (const policy of [thresholdPolicy(), defaultSequentialPolicy()]) {
      const { outcome, record } = await run({ policy, scenario: broken });
      expect(outcome.exitCode).toBe(3);
      expect(record?.checks.every((c) => c.verdict === 'inconclusive')).toBe(true);
      expect(outcome.reason).toContain('error count: Prometheus returned no data');
    }
  });

  it('an advisory metric whose query fails is reported as not measured and never ends the rollout', async () => {
    const metrics = new ScriptedMetrics(START, healthy);
    metrics.failWith = new CanaryError('query-failed', 'Prometheus rejected the query with execution (HTTP 422): too many samples');
    metrics.failOn = /container_memory/;
    const { outcome, record } = await run({ metrics });
    expect(outcome.result).toBe('promoted');
    expect(record?.checks[0]?.results.find((r) => r.metric === 'memory')).toMatchObject({
      verdict: 'info',
      reason: 'not measured: Prometheus rejected the query with execution (HTTP 422): too many samples',
    });
  });

  it('an operator rollback that races a failing check wins: exit 4, their reason, no second incident', async () => {
    const opened: string[] = [];
    const sinks: IncidentSink[] = [{ name: 'pager', open: async (r) => (opened.push(r.id), { sink: 'pager', ok: true, message: 'sent' }) }];
    const slow: Scenario = (minute, side) => (side === 'canary' && minute >= 4 ? { ...healthy(minute, side), p95: 3 } : healthy(minute, side));
    const { outcome, cluster } = await run({
      scenario: slow,
      incidents: sinks,
      onEvent: (e, c) => {
        // The operator writes their abort while the failing check 4 is being decided.
        if (e.type === 'check' && e.check.index === 4) {
          void (async () => {
            const cur = await c.load();
            if (!cur) return;
            cur.record.rollback = { reason: 'pager: checkout slow', requestedBy: 'alice', at: new Date().toISOString() };
            cur.record.phase = 'aborted';
            await c.save(cur.record, cur.version);
          })();
        }
      },
    });
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4, reason: 'rolled back by an operator by alice: pager: checkout slow' });
    expect(cluster.weight).toBe(0);
    expect(opened).toEqual([]);
  });

  it('an operator rollback while stable is being promoted ends with the canary at 0% and exit 4', async () => {
    class SlowPromotion extends MemoryCluster {
      override async promoteStable(image: string): Promise<void> {
        await this.stop('rolled back by bob');
        const cur = await this.load();
        if (cur) {
          cur.record.rollback = { reason: 'wrong build', requestedBy: 'bob', at: new Date().toISOString() };
          cur.record.phase = 'aborted';
          await this.save(cur.record, cur.version);
        }
        return super.promoteStable(image);
      }
    }
    const cluster = new SlowPromotion('shop', targetNames('checkout', {}), 'shop/checkout:1');
    const { outcome } = await run({ cluster });
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4, reason: 'rolled back by an operator by bob: wrong build' });
    expect(cluster.weight).toBe(0);
  });

  it('a promotion whose stable update fails says the stable Deployment needs a look', async () => {
    class BrokenPromotion extends MemoryCluster {
      override async promoteStable(): Promise<void> {
        throw new CanaryError('unexpected', 'Deployment shop/checkout did not become available: ProgressDeadlineExceeded');
      }
    }
    const cluster = new BrokenPromotion('shop', targetNames('checkout', {}), 'shop/checkout:1');
    const { outcome } = await run({ cluster });
    expect(outcome.result).toBe('failed');
    expect(cluster.weight).toBe(0);
    expect(outcome.reason).toContain('stable Deployment checkout could not be set back to shop/checkout:1');
    expect(outcome.reason).toContain('kubectl rollout undo deployment/checkout -n shop');
  });

  it('stops without touching traffic when another deploy took the rollout over', async () => {
    const { outcome, cluster } = await run({
      onEvent: (e, c) => {
        // Another machine resumed the rollout after our lease expired: its writes win.
        if (e.type === 'check' && e.check.index === 3) {
          void (async () => {
            const cur = await c.load();
            if (!cur) return;
            cur.record.startedBy = 'https://github.com/acme/shop/actions/runs/99';
            await c.save(cur.record, cur.version);
          })();
        }
      },
    });
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4, traffic: 'left to the deploy that took over' });
    expect(outcome.reason).toContain('started by https://github.com/acme/shop/actions/runs/99');
    expect(cluster.weight).toBe(10);
    expect(cluster.canaryReplicas).toBe(1);
  });

  // Issue 16 item 3: persistQuietly swallowed the takeover, and the stopping deploy went on as
  // if it owned the record (scaled the canary, recorded, opened incidents).
  it('a takeover during the stop is not swallowed: traffic at 0% confirmed, the rest left to the new owner, exit 4 saying so', async () => {
    class TakenOverDuringStop extends MemoryCluster {
      taken = false;
      override async save(record: RolloutRecord, expected: string | null): Promise<string> {
        if (!this.taken && record.phase === 'rolling-back' && record.weight === 0) {
          this.taken = true;
          // Another machine resumed the rollout (our lease had expired) just before our save.
          const cur = await super.load();
          if (cur) await super.save({ ...cur.record, resumedBy: 'https://github.com/acme/shop/actions/runs/99', rollback: undefined }, cur.version);
        }
        return super.save(record, expected);
      }
    }
    const cluster = new TakenOverDuringStop('shop', targetNames('checkout', {}), 'shop/checkout:1');
    cluster.canaryReplicas = 1;
    const opened: string[] = [];
    const sink: IncidentSink = { name: 'webhook', open: async () => { opened.push('x'); return { sink: 'webhook', ok: true, message: 'opened' }; } };
    const slow: Scenario = (minute, side) => (side === 'canary' ? { ...healthy(minute, side), p95: 3 } : healthy(minute, side));
    const { outcome } = await run({ cluster, scenario: slow, incidents: [sink] });
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4 });
    expect(outcome.reason).toContain('taken over');
    expect(outcome.traffic).toContain('canary at 0%');
    expect(cluster.weight).toBe(0);
    // Nothing after the takeover: no scale-down, no incident, the new owner's record untouched.
    expect(cluster.canaryReplicas).toBe(1);
    expect(opened).toEqual([]);
    expect((await cluster.load())?.record.resumedBy).toBe('https://github.com/acme/shop/actions/runs/99');
  });

  // Issue 16 item 6: past the point of no return (stable runs the new image and is available),
  // one failed write used to send the stop path back, setting stable to the old image.
  it('after a passed promotion, a transient failure finishes forward: stable keeps the new image, canary to 0% and scaled down, promoted', async () => {
    class OneFailedWrite extends MemoryCluster {
      failed = false;
      override async setWeight(weight: number): Promise<void> {
        if (weight === 0 && this.stable === 'shop/checkout:2' && !this.failed) {
          this.failed = true;
          throw new CanaryError('unreachable', 'Kubernetes API unreachable: ECONNRESET');
        }
        return super.setWeight(weight);
      }
    }
    const cluster = new OneFailedWrite('shop', targetNames('checkout', {}), 'shop/checkout:1');
    const { outcome, events } = await run({ cluster });
    expect(cluster.failed).toBe(true);
    expect(cluster.stable).toBe('shop/checkout:2');
    expect(cluster.weight).toBe(0);
    expect(cluster.canaryReplicas).toBe(0);
    expect(outcome).toMatchObject({ result: 'promoted', exitCode: 0 });
    expect(outcome.reason).toContain('finished forward');
    expect((await cluster.load())?.record).toMatchObject({ phase: 'promoted', images: { stable: 'shop/checkout:2' } });
    expect(events.some((e) => e.type === 'log' && e.message.includes('past the point of no return'))).toBe(true);
  });

  // Issue 16 item 5 (second half): never act past the time the lease is known to be ours.
  it('a lease taken by another deploy while this one stops: the confirmed 0% stays, nothing else is done, exit 4', async () => {
    const lease = new AbortController();
    const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
    cluster.canaryReplicas = 1;
    const slow: Scenario = (minute, side) => (side === 'canary' ? { ...healthy(minute, side), p95: 3 } : healthy(minute, side));
    const { outcome } = await run({
      cluster,
      scenario: slow,
      signal: lease.signal,
      onEvent: (e) => {
        // The renewal loop sees the takeover just as the stop's 0% is confirmed.
        if (e.type === 'traffic' && e.weight === 0) lease.abort(new CanaryError('taken-over', 'the Lease shop/checkout-canary was taken over by run-2'));
      },
    });
    expect(outcome).toMatchObject({ result: 'aborted', exitCode: 4 });
    expect(outcome.reason).toContain('taken over by run-2');
    expect(cluster.weight).toBe(0);
    expect(cluster.canaryReplicas).toBe(1);
  });

  it('a lost lease taken by another deploy is a takeover; a lost lease nobody took sends the canary to 0%', async () => {
    for (const [reason, weight] of [
      [new CanaryError('taken-over', 'the Lease shop/checkout-canary was taken over by run-2'), 10],
      [new CanaryError('unreachable', 'the Lease shop/checkout-canary was deleted'), 0],
    ] as const) {
      const controller = new AbortController();
      const { outcome, cluster } = await run({
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'check' && e.check.index === 2) controller.abort(reason);
        },
      });
      expect(cluster.weight).toBe(weight);
      expect(outcome.exitCode).toBe(reason.exitCode);
    }
  });

  it("keeps Prometheus's warnings with the check they came from", async () => {
    const metrics = new ScriptedMetrics(START, healthy);
    metrics.warnings = ['PromQL info: metric might not be a counter, name does not end in _total: "nginx_ingress_controller_requests"'];
    const { record } = await run({ metrics });
    expect(record?.checks[0]?.warnings).toEqual(metrics.warnings);
  });

  describe('promotion, idempotent against live state (issue 8, observation 3)', () => {
    /** A promoted run's record, turned back into the record of a deploy that died while promoting. */
    async function diedWhilePromoting(stage: RolloutRecord['promotion'] | undefined) {
      const { record } = await run();
      if (!record) throw new Error('no record');
      const { outcome: _outcome, ...rest } = record;
      return { ...rest, phase: 'promoting' as const, weight: 0, images: { ...record.images, stable: 'shop/checkout:1' }, ...(stage && { promotion: stage }) };
    }

    class Watched extends OrderedCluster {
      override async startCanary(image: string): Promise<void> {
        this.order.push(`canary ready (was ${this.canaryReplicas} replicas)`);
        return super.startCanary(image);
      }
    }

    it('resumed with the canary scaled to 0 and stable on the old image: the canary is made ready before any weight goes to it', async () => {
      const cluster = new Watched('shop', targetNames('checkout', {}), 'shop/checkout:1');
      cluster.weight = 0;
      cluster.canaryReplicas = 0;
      await cluster.save(await diedWhilePromoting('updating-stable'), null);
      const stored = await cluster.load();
      if (!stored) throw new Error('not stored');
      const { outcome } = await run({ cluster }, stored);
      expect(outcome.result).toBe('promoted');
      const ready = cluster.order.indexOf('canary ready (was 0 replicas)');
      expect(ready).toBeGreaterThanOrEqual(0);
      expect(cluster.order.indexOf('weight 100')).toBeGreaterThan(ready);
    });

    it('resumed with stable already on the new image and available: straight to 0%, never 100% to a canary without pods', async () => {
      const cluster = new Watched('shop', targetNames('checkout', {}), 'shop/checkout:2');
      cluster.weight = 0;
      cluster.canaryReplicas = 0;
      await cluster.save(await diedWhilePromoting(undefined), null);
      const stored = await cluster.load();
      if (!stored) throw new Error('not stored');
      const { outcome, record } = await run({ cluster }, stored);
      expect(outcome).toMatchObject({ result: 'promoted', exitCode: 0 });
      expect(cluster.order).not.toContain('weight 100');
      expect(cluster.order.some((o) => o.startsWith('canary ready'))).toBe(false);
      expect(record).toMatchObject({ phase: 'promoted', images: { stable: 'shop/checkout:2' } });
      expect(record?.promotion).toBeUndefined();
    });

    it('records each promotion stage before acting on it', async () => {
      const stages: string[] = [];
      class Stages extends MemoryCluster {
        override async save(record: Parameters<MemoryCluster['save']>[0], expected: string | null): Promise<string> {
          if (record.promotion && stages[stages.length - 1] !== record.promotion) stages.push(record.promotion);
          return super.save(record, expected);
        }
      }
      await run({ cluster: new Stages('shop', targetNames('checkout', {}), 'shop/checkout:1') });
      expect(stages).toEqual(['routing-to-canary', 'updating-stable', 'routing-to-stable', 'scaling-down']);
    });

    it('a final record write that fails is not reported as promoted: exit 5, and the command that records it', async () => {
      class FinalWriteFails extends MemoryCluster {
        override async save(record: Parameters<MemoryCluster['save']>[0], expected: string | null): Promise<string> {
          if (record.phase === 'promoted') throw new CanaryError('unreachable', 'Kubernetes API unreachable after 3 attempts');
          return super.save(record, expected);
        }
      }
      const cluster = new FinalWriteFails('shop', targetNames('checkout', {}), 'shop/checkout:1');
      const { outcome, record, events } = await run({ cluster });
      expect(outcome).toMatchObject({ result: 'failed', exitCode: 5 });
      expect(outcome.reason).toContain('the promotion is done in the cluster (stable runs shop/checkout:2, canary at 0%) but the final record could not be saved');
      expect(outcome.reason).toContain('`canary deploy checkout -n shop --image shop/checkout:2 --resume`');
      expect(record?.phase).toBe('promoting');
      expect(events.filter((e) => e.type === 'finished').map((e) => (e.type === 'finished' ? e.outcome.result : ''))).toEqual(['failed']);
      // Nothing was rolled back: stable keeps the new image, traffic stays on stable.
      expect(cluster.stable).toBe('shop/checkout:2');
      expect(cluster.weight).toBe(0);
    });
  });

  it('on a second signal, one quick stop; once a read shows 0% the canary is scaled down too (two SIGTERMs used to leave it running)', async () => {
    let forced: Promise<{ weight: number | null; replicas: number; phase: string | undefined }> | undefined;
    let safe: boolean | undefined;
    const { cluster } = await run({
      onEvent: (e, c) => {
        // The forced-exit hook runs while the rollout is mid-step, as a second SIGTERM makes it.
        if (e.type === 'check' && e.check.index === 2 && !forced) {
          const engine = current;
          forced = engine!.recordForcedExit().then(async () => {
            safe = engine!.trafficSafe;
            return { weight: c.weight, replicas: c.canaryReplicas, phase: (await c.load())?.record.phase };
          });
        }
      },
    });
    expect(await forced).toEqual({ weight: 0, replicas: 0, phase: 'aborted' });
    expect(safe).toBe(true);
    // The stop marker fences the rollout that kept running in this test: no raise landed after it.
    expect(cluster.weight).toBe(0);
  });
});

describe('the step-advance rule and the judges kept across a restart (issue 9)', () => {
  const sequential = () => defaultSequentialPolicy();

  it('never raises traffic while the canary is at 9% errors against 1% on thin traffic: it holds the step, then rolls back', async () => {
    // About 25 canary requests a check, as on a live Prometheus scraped every second.
    const bad: Scenario = (minute, side) =>
      side === 'canary' ? { requests: 25, errors: 2.25, p95: 0.2 } : { requests: 225, errors: 2.2, p95: 0.19 };
    const { outcome, cluster, events } = await run({ policy: sequential(), scenario: bad });
    expect(outcome.exitCode).toBe(3);
    expect(weights(cluster)).toEqual([10, 0]);
    const logs = events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
    expect(logs.some((m) => m.includes('advances without proof of health'))).toBe(false);
  });

  it('holds a step whose time is up while this step leans towards a regression, and advances once it no longer does', async () => {
    // 5% against 1% through the first step (+4 points: leaning, not decisive), 1% after it.
    const lean: Scenario = (minute, side) =>
      side === 'canary'
        ? { requests: 60, errors: minute <= 15 ? 3 : 0.6, p95: 0.2 }
        : { requests: 540, errors: 5.4, p95: 0.19 };
    const { events, record } = await run({ policy: sequential(), scenario: lean });
    const logs = events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
    const held = logs.find((m) => m.startsWith('step 1 held at 10%'));
    const atTen = record?.checks.filter((c) => c.weight === 10).length ?? 0;
    // Either the judge decided, or the step waited past its 15 planned checks before it advanced.
    if (record?.outcome?.result === 'promoted') {
      expect(held).toBeDefined();
      expect(atTen).toBeGreaterThan(15);
    } else {
      expect(record?.outcome?.exitCode).toBe(3);
    }
    expect(record?.checks.find((c) => c.weight === 10 && c.index === 15)?.results.some((r) => r.adverse)).toBe(true);
  });

  it("keeps a step held past its hold while the canary's estimate stays above a cap, until a breach rolls it back (never raised)", async () => {
    // 6% against a 5% cap, stable at 4%: too weak at the hold's end to roll back within alpha, and
    // no reason to raise traffic either.
    const overCap: Scenario = (_minute, side) =>
      side === 'canary' ? { requests: 60, errors: 3.6, p95: 0.2 } : { requests: 540, errors: 21.6, p95: 0.19 };
    const { outcome, cluster, events } = await run({ policy: sequential(), scenario: overCap });
    expect(weights(cluster)).toEqual([10, 0]);
    expect(outcome.exitCode).toBe(3);
    const logs = events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
    expect(logs.some((m) => m.includes('advances without proof of health'))).toBe(false);
  });

  it('names the 2 s latency cap in the check table', async () => {
    const { record } = await run({ policy: sequential() });
    const latency = record?.checks[0]?.results.find((r) => r.metric === 'p95-latency');
    expect(latency?.check).toBe("P95 ≤ 1.5× stable's and ≤ 2s (sequential)");
    expect(latency?.unit).toBe('seconds');
  });

  it('keeps the judges\' evidence in the record and continues it on --resume', async () => {
    let snapshot: Promise<StoredRecord | null> | undefined;
    await run({
      policy: sequential(),
      onEvent: (e, c) => {
        if (e.type === 'check' && e.check.index === 20) snapshot = c.load();
      },
    });
    const died = await snapshot;
    if (!died) throw new Error('no snapshot');
    expect(Object.keys(died.record.judge ?? {})).toEqual(['error-rate', 'p95-latency']);
    const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
    cluster.weight = 25;
    await cluster.save(JSON.parse(JSON.stringify(died.record)), null);
    const { record } = await run({ policy: sequential(), cluster }, (await cluster.load()) ?? undefined);
    // The first check after the restart judges the 25% step with the 5 checks it had already seen.
    const first = record?.checks[20];
    const errors = first?.results.find((r) => r.metric === 'error-rate');
    expect(errors?.evidence?.['canaryRequests']).toBe(6 * 240);
  });

  it('stops at once with exit 2, naming the query, the namespace and the time, when Prometheus has no requests at all', async () => {
    const nothing: Scenario = () => ({ requests: null, errors: null, p95: null });
    const { outcome, record } = await run({ policy: sequential(), scenario: nothing });
    expect(outcome.exitCode).toBe(2);
    expect(record?.checks).toHaveLength(0);
    expect(outcome.reason).toContain('Prometheus has no request data for ingress checkout in namespace shop at 2026-');
    expect(outcome.reason).toContain('query: sum(');
  });
});
