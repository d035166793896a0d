import { describe, expect, it } from 'vitest';
import { createErrorRateJudge } from '../../src/analysis/sequential/binomial-sequential.js';
import { evidenceOriginWords, moreRequestsWords } from '../../src/analysis/sequential/explain.js';
import { changePointWeight } from '../../src/analysis/sequential/proportion-test.js';
import { createRandom, type Random } from '../../src/analysis/sequential/random.js';
import type { ErrorRateWindow, SequentialDecision } from '../../src/analysis/sequential/types.js';

// The shipped scenario: the default schedule (10% for 15 checks, 25% for 10, 50% for 15), about
// 2,400 requests a minute, canary errors at 0.5% like stable's until five minutes into the 25%
// step, then 12%. The engine splits the policy's α = 1% over its two sequential metrics.
const ROLLOUT_START = Date.UTC(2024, 5, 1, 10, 0);
const MINUTE = 60_000;
const ENGINE_ALPHA = 0.005;

interface Scenario {
  /** 0-based window index at which the canary's error rate jumps. */
  jumpAt: number;
  jumpRate: number;
}

/** Windows with exactly the expected counts (no noise): 240/2,160 at 10%, 600/1,800 at 25%. */
function exactWindows(s: Scenario): ErrorRateWindow[] {
  const windows: ErrorRateWindow[] = [];
  const steps = [
    { weight: 0.1, checks: 15 },
    { weight: 0.25, checks: 10 },
    { weight: 0.5, checks: 15 },
  ];
  steps.forEach((step, index) => {
    for (let c = 0; c < step.checks; c++) {
      const i = windows.length;
      const canary = 2400 * step.weight;
      const stable = 2400 - canary;
      windows.push({
        step: index,
        startedAt: new Date(ROLLOUT_START + i * MINUTE),
        canary: { requests: canary, errors: canary * (i >= s.jumpAt ? s.jumpRate : 0.005) },
        stable: { requests: stable, errors: stable * 0.005 },
      });
    }
  });
  return windows;
}

/** The same rollout with Poisson traffic, binomial errors and ±20% per-side per-minute jitter. */
function noisyWindows(random: Random, s: Scenario, rps = 40, jitter = 0.2): ErrorRateWindow[] {
  return exactWindows(s).map((w, i) => {
    const total = random.poisson(rps * 60);
    const share = w.canary.requests / (w.canary.requests + w.stable.requests);
    const canary = random.binomial(total, share);
    const stable = total - canary;
    const rate = (base: number) => Math.min(1, base * random.gamma(1 / jitter ** 2, jitter ** 2));
    return {
      ...w,
      canary: { requests: canary, errors: random.binomial(canary, i >= s.jumpAt ? Math.min(1, 0.005 * rate(1) + s.jumpRate - 0.005) : rate(0.005)) },
      stable: { requests: stable, errors: random.binomial(stable, rate(0.005)) },
    };
  });
}

/** Feeds windows until the first rollback; returns the 0-based index of that window, or null. */
function firstRollback(windows: readonly ErrorRateWindow[], alpha = ENGINE_ALPHA): { at: number | null; decision: SequentialDecision | null } {
  const judge = createErrorRateJudge({ alpha, plannedSteps: 3, plannedChecks: 40 });
  for (let i = 0; i < windows.length; i++) {
    const d = judge.observe(windows[i] as ErrorRateWindow);
    if (d.decision === 'fail') return { at: i, decision: d };
  }
  return { at: null, decision: null };
}

describe('sequential judge: a regression that begins in the middle of a step', () => {
  // Check 21 of the rollout is window 20: the 6th check of the 25% step.
  const jump = { jumpAt: 20, jumpRate: 0.12 };

  it('rolls back at the first bad window when errors jump from 0.5% to 12% five minutes into the 25% step', () => {
    const { at, decision } = firstRollback(exactWindows(jump));
    expect(at).toBe(20);
    expect(decision?.canaryRate).toBeCloseTo(0.12, 6);
    expect(decision?.stableRate).toBeCloseTo(0.005, 6);
  });

  it('names the minute the evidence comes from, not the step, so the operator looks at the right graph', () => {
    const { decision } = firstRollback(exactWindows(jump));
    expect(decision?.explanation).toMatch(
      /^canary errors 12\.0% vs stable 0\.50% over the last check, since 10:20 UTC \(step 2, its 6th check\): worse by the 3-point margin, with 99\.5% confidence/,
    );
    // The counts shown are the bad window's alone, not diluted by the step's healthy minutes.
    expect(decision?.canaryRequests).toBe(600);
    expect(decision?.canaryEvents).toBeCloseTo(72, 6);
  });

  it('rolls back at the first bad window in at least 99% of noisy replays of that scenario', () => {
    const random = createRandom(2101);
    const results = Array.from({ length: 300 }, () => firstRollback(noisyWindows(random, jump)).at);
    const atFirst = results.filter((at) => at === 20).length;
    expect(results.filter((at) => at !== null && at < 20)).toEqual([]);
    expect(atFirst / results.length).toBeGreaterThanOrEqual(0.99);
  });

  it('still says "since step 2 began" when the regression starts with the step', () => {
    const { at, decision } = firstRollback(exactWindows({ jumpAt: 15, jumpRate: 0.12 }));
    expect(at).toBe(15);
    expect(decision?.explanation).toContain('over the last check, since step 2 began at 10:15 UTC:');
  });
});

describe('sequential judge: the change-point mixture keeps false rollbacks under α', () => {
  it('puts prior weight summing to at most 1 on change points, however long the rollout is held', () => {
    for (const [steps, checks] of [
      [1, 1],
      [3, 40],
      [5, 12],
    ] as const) {
      let sum = 0;
      // A step start every 7 windows, twice as many steps as planned, for 100,000 windows.
      for (let k = 0; k < 100_000; k++) sum += changePointWeight(k, k % 7 === 0 && k / 7 < 2 * steps ? k / 7 : null, steps, checks);
      expect(sum).toBeLessThanOrEqual(1 + 1e-12);
      expect(sum).toBeGreaterThan(0.99);
    }
  });

  it('rolls back identical, overdispersed streams in at most α of rollouts, with steps held past the plan', () => {
    // α = 5% so that a mixture leaking mass would show within the sample; 1,200 rollouts of
    // 60 windows each (20 past the plan, as a held rollout sees), 2 to 200 req/s.
    const random = createRandom(77);
    const alpha = 0.05;
    let rollbacks = 0;
    let runs = 0;
    for (const rps of [2, 20, 200]) {
      for (const jitter of [0, 0.3]) {
        for (let i = 0; i < 200; i++) {
          const rate = Math.exp(Math.log(0.001) + random.uniform() * Math.log(30));
          const judge = createErrorRateJudge({ alpha, plannedSteps: 3, plannedChecks: 40 });
          const multiplier = () => (jitter > 0 ? random.gamma(1 / jitter ** 2, jitter ** 2) : 1);
          runs++;
          for (let w = 0; w < 60; w++) {
            const step = w < 15 ? 0 : w < 25 ? 1 : 2;
            const total = random.poisson(rps * 60);
            const canary = random.binomial(total, [0.1, 0.25, 0.5][step] as number);
            const shared = Math.exp(0.2 * random.normal());
            const d = judge.observe({
              step,
              canary: { requests: canary, errors: random.binomial(canary, Math.min(1, rate * shared * multiplier())) },
              stable: { requests: total - canary, errors: random.binomial(total - canary, Math.min(1, rate * shared * multiplier())) },
            });
            if (d.decision === 'fail') {
              rollbacks++;
              break;
            }
          }
        }
      }
    }
    expect(runs).toBe(1200);
    expect(rollbacks / runs).toBeLessThanOrEqual(alpha);
  });
});

describe('sequential judge: explanations an operator can act on', () => {
  it('words the requests still needed with the right number, and says when the next check should decide', () => {
    expect(moreRequestsWords(1, 0)).toBe('; about 1 more canary request needed');
    expect(moreRequestsWords(1, 600)).toBe('; nearly settled: about 1 more canary request, likely within the next check');
    expect(moreRequestsWords(0, 600)).toBe('; nearly settled: the next check or two should decide');
    expect(moreRequestsWords(2500, 600)).toBe('; about 2,500 more canary requests needed (about 5 checks at the current traffic)');
    expect(moreRequestsWords(900_000, 3)).toBe('; about 900,000 more canary requests needed (more than 100 checks at the current traffic)');
    expect(moreRequestsWords(undefined, 3)).toBe('');
  });

  it('names where the evidence starts: the rollout, a step, or a minute within a step', () => {
    const at = new Date(Date.UTC(2024, 5, 1, 10, 21));
    expect(evidenceOriginWords({ window: 0, windows: 1, step: 0, windowInStep: 0 })).toBe('over the first check of the rollout');
    expect(evidenceOriginWords({ window: 0, windows: 3, step: 0, windowInStep: 0, startedAt: at })).toBe(
      'over all 3 checks since the rollout began at 10:21 UTC',
    );
    expect(evidenceOriginWords({ window: 15, windows: 2, step: 1, windowInStep: 0, startedAt: at })).toBe(
      'over the last 2 checks, since step 2 began at 10:21 UTC',
    );
    expect(evidenceOriginWords({ window: 21, windows: 1, step: 1, windowInStep: 6, startedAt: at })).toBe(
      'over the last check, since 10:21 UTC (step 2, its 7th check)',
    );
    expect(evidenceOriginWords({ window: 22, windows: 4, step: 1, windowInStep: 2 })).toBe('over the last 4 checks, from step 2, its 3rd check');
  });

  it('never says "1 canary requests": an inconclusive first check words its counts in the right number', () => {
    const d = createErrorRateJudge().observe({ canary: { requests: 1, errors: 0 }, stable: { requests: 9, errors: 0 }, step: 0 });
    expect(d.decision).toBe('inconclusive');
    expect(d.explanation).toMatch(/over 1 canary request: not settled yet/);
    expect(d.explanation).not.toMatch(/\b1 (more )?canary requests\b/);
  });
});
