// Checks fall on absolute ticks from the step's start (check k judges the window ending at
// start + k × interval), whatever each check takes; an overrun skips to the next tick and says so;
// each check's query time lags its tick by the evaluation delay.

import { describe, expect, it } from 'vitest';
import type { MetricsSource, QueryResult } from '../../src/analysis/types.js';
import type { Policy } from '../../src/policy/policy.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import { TickSchedule } from '../../src/rollout/engine.js';
import { thresholdPolicy } from '../support/policies.js';
import { healthy, ScriptedMetrics } from '../support/scripted-metrics.js';
import { checkoutEngine } from '../support/checkout-engine.js';
import { START } from '../support/times.js';

const MINUTE = 60_000;

/** Prometheus that takes (virtual) time to answer: `slowness(check)` ms for the given check. */
class SlowMetrics implements MetricsSource {
  readonly inner = new ScriptedMetrics(START, healthy);
  private checks = 0;
  constructor(
    private readonly clock: VirtualClock,
    private readonly slowness: (check: number) => number,
  ) {}
  async query(promql: string, at: Date): Promise<QueryResult> {
    // The canary memory query is asked once per check: it stands for the check's duration.
    if (promql.includes('container_memory') && promql.includes('canary')) {
      this.checks += 1;
      await this.clock.sleep(this.slowness(this.checks));
    }
    return this.inner.query(promql, at);
  }
}

async function run(policy: Policy, slowness: (check: number) => number, evaluationDelayMs?: number) {
  const clock = new VirtualClock(START);
  const metrics = new SlowMetrics(clock, slowness);
  const { engine, events } = checkoutEngine({ policy, metrics, clock, extra: { ...(evaluationDelayMs !== undefined && { evaluationDelayMs }) } });
  const outcome = await engine.run();
  const checks = events.flatMap((e) => (e.type === 'check' ? [e.check] : []));
  const warnings = events.flatMap((e) => (e.type === 'log' && e.level === 'warn' ? [e.message] : []));
  return { outcome, checks, warnings, asked: metrics.inner.asked };
}

const oneStep = (extra = '') => thresholdPolicy(`apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  interval: 1m\n  steps:\n    - { weight: 10, duration: 10m }\n${extra}`);

describe('check timing', () => {
  it('checks that take 5 s each still judge windows ending on the minute: no drift, no gaps', async () => {
    const { outcome, checks } = await run(oneStep(), () => 5_000);
    expect(outcome.result).toBe('promoted');
    expect(checks.map((c) => (Date.parse(c.at) - START) / MINUTE)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('a check that overruns the next tick skips to the first tick still ahead and says so', async () => {
    // Check 3 (at minute 3) takes 2.5 minutes: minutes 4 and 5 have passed when it ends.
    const { outcome, checks, warnings } = await run(oneStep(), (n) => (n === 3 ? 150_000 : 1_000));
    expect(outcome.result).toBe('promoted');
    expect(checks.map((c) => (Date.parse(c.at) - START) / MINUTE)).toEqual([1, 2, 3, 6, 7, 8, 9, 10]);
    expect(warnings).toContain("check 3 took past the next check's time: skipping 2 checks, the next one is at 2026-01-15T10:06:00.000Z");
  });

  it('each query lags its tick by the evaluation delay, for scrape and ingestion lag', async () => {
    // With a 1-minute window, minute 1's query (at 30 s) would judge from 30 s before the step: skipped.
    const { checks, asked } = await run(oneStep(), () => 0, 30_000);
    expect(checks.map((c) => (Date.parse(c.at) - START) / 1000)).toEqual([90, 150, 210, 270, 330, 390, 450, 510, 570]);
    expect(new Set(asked.map((a) => (a.at.getTime() - START) / 1000))).toEqual(new Set([90, 150, 210, 270, 330, 390, 450, 510, 570]));
  });

  // Issue 16 item 9 (live: a healthy build deployed 0.6 s after a failed one was judged on the
  // failed one's traffic). No check's window starts before the weight change it judges: the
  // first check of the rollout and the first of each step are delayed, and say so.
  it('no check window starts before the weight change it judges: first checks delayed, and the evidence says so', async () => {
    const policy = thresholdPolicy(`apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  interval: 5s\n  steps:\n    - { weight: 10, duration: 30s }\n    - { weight: 50, duration: 30s }\n  analysis:\n    window: 10s\n    evaluationDelay: 15s\n`);
    const clock = new VirtualClock(START);
    const metrics = new ScriptedMetrics(START, healthy);
    const { engine, events } = checkoutEngine({ policy, metrics, clock, extra: { evaluationDelayMs: 15_000 } });
    expect((await engine.run()).result).toBe('promoted');
    const changes = events.flatMap((e) => (e.type === 'traffic' && e.weight > 0 && e.weight < 100 ? [e.at] : []));
    expect(changes).toHaveLength(2);
    const checks = events.flatMap((e) => (e.type === 'check' ? [e.check] : []));
    for (const c of checks) {
      const changedAt = changes[c.stepIndex] ?? 0;
      expect(Date.parse(c.at) - 10_000, `check ${c.index} at ${c.at}`).toBeGreaterThanOrEqual(changedAt);
    }
    // Every query asked of Prometheus too.
    expect(Math.min(...metrics.asked.map((a) => a.at.getTime())) - 10_000).toBeGreaterThanOrEqual(changes[0] ?? 0);
    const firsts = [0, 1].map((i) => checks.find((c) => c.stepIndex === i));
    for (const first of firsts) expect(first?.warnings?.[0]).toMatch(/^delayed: the first check of step \d judges .* after the weight change at/);
    expect(checks.filter((c) => c.warnings?.some((w) => w.startsWith('delayed:')))).toHaveLength(2);
  });

  it('evaluationDelay defaults to 30s in the policy and accepts 0s', () => {
    expect(oneStep().analysis.evaluationDelayMs).toBe(30_000);
    expect(oneStep('  analysis:\n    evaluationDelay: 0s\n').analysis.evaluationDelayMs).toBe(0);
    expect(oneStep('  analysis:\n    evaluationDelay: 45s\n').analysis.evaluationDelayMs).toBe(45_000);
  });
});

describe('TickSchedule', () => {
  it('moves one tick on time, and past every tick an overrun missed', () => {
    const ticks = new TickSchedule(1_000, 100);
    expect(ticks.next).toBe(1_100);
    expect(ticks.advance(1_150)).toBe(0);
    expect(ticks.next).toBe(1_200);
    // Ending exactly on the following tick is not an overrun.
    expect(ticks.advance(1_300)).toBe(0);
    expect(ticks.next).toBe(1_300);
    expect(ticks.advance(1_301)).toBe(0);
    expect(ticks.next).toBe(1_400);
    expect(ticks.advance(1_650)).toBe(2);
    expect(ticks.next).toBe(1_700);
  });
});
