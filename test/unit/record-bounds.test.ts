// The rollout record stays bounded: the last analysis.historyLimit checks in full plus running
// tallies, so limits, `status`, `--resume` and the promotion message survive trimming, and each
// save serialises the record once.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_RECORD_BYTES, serializeRecord } from '../../src/k8s/configmap-state-store.js';
import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { targetNames, type Policy } from '../../src/policy/policy.js';
import { renderStatus, statusView } from '../../src/report/status-view.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import { promotionReason } from '../../src/rollout/engine.js';
import type { RolloutEvent } from '../../src/rollout/events.js';
import type { StoredRecord } from '../../src/rollout/ports.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { defaultPolicy, thresholdPolicy } from '../support/policies.js';
import { healthy, ScriptedMetrics, type Scenario } from '../support/scripted-metrics.js';
import { checkoutEngine } from '../support/checkout-engine.js';
import { realisticCheck, recordWithChecks } from '../support/records.js';
import { START } from '../support/times.js';
import { createErrorRateJudge } from '../../src/analysis/sequential/binomial-sequential.js';
import { standardNormalCdf } from '../../src/analysis/sequential/evidence.js';
import { createLatencyJudge } from '../../src/analysis/sequential/latency-sequential.js';


async function run(policy: Policy, opts: { scenario?: Scenario; cluster?: MemoryCluster; onEvent?: (e: RolloutEvent, c: MemoryCluster) => void } = {}, resume?: StoredRecord) {
  const { engine, cluster, events } = checkoutEngine({
    policy,
    metrics: new ScriptedMetrics(START, opts.scenario ?? healthy),
    clock: new VirtualClock(START),
    ...(opts.cluster && { cluster: opts.cluster }),
    ...(opts.onEvent && { onEvent: opts.onEvent }),
  });
  const outcome = await engine.run(resume);
  return { outcome, cluster, events, record: (await cluster.load())?.record };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a bounded rollout record', () => {
  it('keeps the last historyLimit checks in full and counts every check in its tallies', async () => {
    const { outcome, record } = await run(thresholdPolicy('apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  analysis:\n    historyLimit: 10\n'));
    expect(outcome.result).toBe('promoted');
    expect(record?.checks.map((c) => c.index)).toEqual([31, 32, 33, 34, 35, 36, 37, 38, 39, 40]);
    expect(record?.tallies).toEqual({
      run: 40,
      passed: 40,
      failed: 0,
      inconclusive: 0,
      pending: 0,
      failures: 0,
      inconclusiveRun: 0,
      byStep: [
        { run: 15, passed: 15, failed: 0, inconclusive: 0, pending: 0 },
        { run: 10, passed: 10, failed: 0, inconclusive: 0, pending: 0 },
        { run: 15, passed: 15, failed: 0, inconclusive: 0, pending: 0 },
      ],
    });
    // The promotion counts every check, not only those still kept.
    expect(outcome.reason).toBe('all 40 checks passed');
  });

  it('keeps 50 checks by default, like Argo Rollouts\' measurement history', () => {
    expect(thresholdPolicy().analysis.historyLimit).toBe(50);
    expect(defaultPolicy().analysis.historyLimit).toBe(50);
  });

  it('--resume keeps counting failures the record no longer holds in full', async () => {
    // countFailures total, 2 allowed: one failure at minute 5, then healthy. After check 12 the
    // failing check is gone from the record (historyLimit 3), but the tally still holds it.
    const policy = thresholdPolicy('apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  analysis:\n    historyLimit: 3\n    failureLimit: 2\n    countFailures: total\n');
    const failsAtMinute5: Scenario = (minute, side) => (side === 'canary' && minute === 5 ? { requests: 600, errors: 90, p95: 0.2 } : healthy(minute, side));
    let snapshot: Promise<StoredRecord | null> | undefined;
    const first = await run(policy, {
      scenario: failsAtMinute5,
      onEvent: (e, c) => {
        if (e.type === 'check' && e.check.index === 12) snapshot = c.load();
      },
    });
    expect(first.outcome.result).toBe('promoted');
    const died = await snapshot;
    if (!died) throw new Error('no snapshot');
    expect(died.record.checks.map((c) => c.verdict)).toEqual(['pass', 'pass', 'pass']);
    expect(died.record.tallies).toMatchObject({ run: 12, passed: 11, failed: 1, failures: 1 });

    const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
    cluster.weight = 10;
    await cluster.save(died.record, null);
    const stored = await cluster.load();
    if (!stored) throw new Error('not stored');
    // The resumed step runs again from its start, and fails at minute 5 once more: the second failure.
    const resumed = await run(policy, { scenario: failsAtMinute5, cluster }, stored);
    expect(resumed.outcome.result).toBe('rolled-back');
    expect(resumed.outcome.reason).toMatch(/\(2 failed checks\)$/);
    expect(resumed.record?.tallies).toMatchObject({ run: 17, failed: 2, failures: 2 });
    // Check numbers go on from the tally, not from the checks kept.
    expect(resumed.record?.checks.at(-1)?.index).toBe(17);
  });

  it('a record written before tallies existed is counted from its checks on --resume', async () => {
    let snapshot: Promise<StoredRecord | null> | undefined;
    await run(thresholdPolicy(), { onEvent: (e, c) => e.type === 'check' && e.check.index === 20 && (snapshot = c.load()) });
    const died = await snapshot;
    if (!died) throw new Error('no snapshot');
    const old: RolloutRecord = { ...died.record };
    delete old.tallies;
    const cluster = new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
    cluster.weight = 25;
    await cluster.save(old, null);
    const { outcome, record } = await run(thresholdPolicy(), { cluster }, (await cluster.load()) ?? undefined);
    expect(outcome.reason).toBe('all 45 checks passed');
    expect(record?.tallies?.byStep.map((s) => s.run)).toEqual([15, 15, 15]);
  });

  it('the promotion message counts each verdict as what it was (an inconclusive check is not "passed")', () => {
    expect(promotionReason({ run: 40, passed: 0, failed: 0, inconclusive: 1, pending: 39 })).toBe('no regression found in 40 checks (0 passed, 39 still gathering evidence, 1 inconclusive)');
    expect(promotionReason({ run: 40, passed: 38, failed: 0, inconclusive: 0, pending: 2 })).toBe('no regression found in 40 checks (38 passed, 2 still gathering evidence)');
    expect(promotionReason({ run: 40, passed: 39, failed: 1, inconclusive: 0, pending: 0 })).toBe('no regression found in 40 checks (39 passed, 1 failed)');
    expect(promotionReason({ run: 40, passed: 40, failed: 0, inconclusive: 0, pending: 0 })).toBe('all 40 checks passed');
  });
});

describe('the record in its ConfigMap', () => {
  it('a 6-hour rollout checked every 10 s (2,160 checks) stays far below the 1 MiB ConfigMap limit', async () => {
    const record = recordWithChecks(2160, await realisticCheck(), 50);
    const text = serializeRecord(record);
    expect(record.checks).toHaveLength(50);
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_RECORD_BYTES / 4);
    expect(JSON.parse(text)).not.toHaveProperty('trimmed');
  });

  it('trimming an oversized record serialises it a bounded number of times, not once per dropped check', async () => {
    // A huge historyLimit (or huge queries) is the only way past the limit now.
    const record = recordWithChecks(1000, await realisticCheck(), 1000);
    const fullSize = Buffer.byteLength(JSON.stringify(record));
    const limit = Math.floor(fullSize / 20);
    const stringify = vi.spyOn(JSON, 'stringify');
    const text = serializeRecord(record, limit);
    const serialised = stringify.mock.results.reduce((sum, r) => sum + (typeof r.value === 'string' ? r.value.length : 0), 0);
    stringify.mockRestore();
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(limit);
    const stored = JSON.parse(text) as RolloutRecord & { trimmed?: boolean; trimmedChecks?: number };
    expect(stored.trimmed).toBe(true);
    expect(stored.trimmedChecks).toBeGreaterThan(0);
    expect(stored.checks.at(-1)?.index).toBe(1000);
    // Before: the whole record re-serialised per dropped check (hundreds of times its size).
    expect(serialised).toBeLessThan(5 * fullSize);
  });
});

describe('status of a trimmed record', () => {
  it('counts every check from the tallies and plans the step from its own count', async () => {
    const template = await realisticCheck();
    const record = recordWithChecks(2160, { ...template, verdict: 'pass' }, 50);
    record.tallies = { run: 2160, passed: 2100, failed: 0, inconclusive: 1, pending: 59, failures: 0, inconclusiveRun: 0, byStep: [{ run: 2100, passed: 2040, failed: 0, inconclusive: 1, pending: 59 }] };
    record.policy.steps = [{ weight: 10, durationMs: 2200 * 10_000 }];
    const view = statusView({ record, liveWeight: 10, lease: { holder: 'run 1 attempt 1 on vm pid 7 #abcdef', renewTime: null, expired: false }, now: START + 3600_000 });
    expect(view.checks).toEqual({ run: 2160, passed: 2100, failed: 0, inconclusive: 1, pending: 59 });
    expect(renderStatus(view, START)).toContain('checks:  2160 run: 2100 passed, 0 failed, 1 inconclusive, 59 pending');
    expect(view.next).toContain('100 more passing checks at 10%');
  });
});

describe('the judges’ state in the record (issue 16 item 10)', () => {
  it('is no larger at 10,000 checks than at 1,000: sufficient statistics, not a span per check', async () => {
    // Both sequential judges of the default policy, fed a healthy window per check at 50% (the
    // longest step), their snapshots stored as the engine stores them (record.judge).
    const errors = createErrorRateJudge({ margin: 0.03, cap: 0.05 });
    const latency = createLatencyJudge({ ratio: 1.5, limit: 2 });
    const edges = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity];
    const buckets = (n: number) => edges.map((le) => ({ le, count: Number.isFinite(le) ? n * standardNormalCdf((Math.log(le) - Math.log(0.12)) / 0.5) : n }));
    const template = await realisticCheck();
    const sizes = new Map<number, number>();
    for (let i = 1; i <= 10_000; i++) {
      const n = 300 + (i % 7);
      errors.observe({ step: 2, canary: { requests: n, errors: 3 + (i % 3) }, stable: { requests: n, errors: 3 + ((i + 1) % 3) } });
      latency.observe({ step: 2, canary: { buckets: buckets(n) }, stable: { buckets: buckets(n) } });
      if (i === 1000 || i === 10_000) {
        const record = recordWithChecks(i, template, 50);
        record.judge = { 'error-rate': errors.snapshot(), 'p95-latency': latency.snapshot() };
        sizes.set(i, Buffer.byteLength(serializeRecord(record)));
      }
    }
    // Counters print with more digits at 10,000 (a window index of 9,999, not 999): at most 1% more.
    expect(sizes.get(10_000)).toBeLessThanOrEqual((sizes.get(1000) as number) * 1.01);
  }, 60_000);
});
