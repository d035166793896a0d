import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { createErrorRateJudge } from '../../src/analysis/sequential/binomial-sequential.js';
import { createRandom, type Random } from '../../src/analysis/sequential/random.js';
import type { ErrorRateWindow, SequentialDecision } from '../../src/analysis/sequential/types.js';

const SCHEDULE = [
  { weight: 0.1, checks: 15 },
  { weight: 0.25, checks: 10 },
  { weight: 0.5, checks: 15 },
];

interface StreamOptions {
  rps: number;
  canaryRate: number | ((check: number) => number);
  stableRate: number;
  /** Coefficient of variation of each side's per-minute rate multiplier (0: plain binomial). */
  jitter?: number;
  /** Shared per-minute drift (log-scale standard deviation). */
  drift?: number;
}

function* rollout(random: Random, o: StreamOptions): Generator<ErrorRateWindow> {
  let check = 0;
  for (let step = 0; step < SCHEDULE.length; step++) {
    const s = SCHEDULE[step] as (typeof SCHEDULE)[number];
    for (let c = 0; c < s.checks; c++) {
      check++;
      const total = random.poisson(o.rps * 60);
      const canaryRequests = random.binomial(total, s.weight);
      const stableRequests = total - canaryRequests;
      const shared = Math.exp((o.drift ?? 0) * random.normal());
      const multiplier = () => (o.jitter ? random.gamma(1 / o.jitter ** 2, o.jitter ** 2) : 1);
      const canaryRate = typeof o.canaryRate === 'function' ? o.canaryRate(check) : o.canaryRate;
      yield {
        step,
        canary: { requests: canaryRequests, errors: random.binomial(canaryRequests, Math.min(1, canaryRate * shared * multiplier())) },
        stable: { requests: stableRequests, errors: random.binomial(stableRequests, Math.min(1, o.stableRate * shared * multiplier())) },
      };
    }
  }
}

/** Runs a rollout until the first fail; returns the decisions seen. */
function judge(random: Random, o: StreamOptions, config = {}): SequentialDecision[] {
  const j = createErrorRateJudge(config);
  const decisions: SequentialDecision[] = [];
  for (const w of rollout(random, o)) {
    const d = j.observe(w);
    decisions.push(d);
    if (d.decision === 'fail') break;
  }
  return decisions;
}

const failed = (ds: SequentialDecision[]) => ds.some((d) => d.decision === 'fail');

describe('sequential error-rate judge: false rollbacks stay under α', () => {
  it('rolls back identical canary and stable streams in at most α of rollouts, from 0.5 to 500 req/s', () => {
    const random = createRandom(1);
    const alpha = 0.01;
    let runs = 0;
    let rollbacks = 0;
    for (const rps of [0.5, 2, 10, 50, 200, 500]) {
      for (let i = 0; i < 150; i++) {
        const rate = Math.exp(Math.log(0.001) + random.uniform() * Math.log(20));
        runs++;
        if (failed(judge(random, { rps, canaryRate: rate, stableRate: rate }, { alpha }))) rollbacks++;
      }
    }
    expect(rollbacks / runs).toBeLessThanOrEqual(alpha);
  });

  it('stays under α with overdispersed counts (per-side rate jitter and shared drift)', () => {
    const random = createRandom(2);
    const alpha = 0.01;
    let runs = 0;
    let rollbacks = 0;
    for (const rps of [5, 50, 200, 500]) {
      for (let i = 0; i < 200; i++) {
        const rate = Math.exp(Math.log(0.001) + random.uniform() * Math.log(20));
        runs++;
        if (failed(judge(random, { rps, canaryRate: rate, stableRate: rate, jitter: 0.3, drift: 0.2 }, { alpha }))) rollbacks++;
      }
    }
    expect(rollbacks / runs).toBeLessThanOrEqual(alpha);
  });

  it('never blames a canary for errors stable shares, even above the 5% cap', () => {
    const random = createRandom(3);
    let rollbacks = 0;
    for (let i = 0; i < 100; i++) if (failed(judge(random, { rps: 100, canaryRate: 0.08, stableRate: 0.08 }))) rollbacks++;
    expect(rollbacks).toBeLessThanOrEqual(1);
  });
});

describe('sequential error-rate judge: decisions', () => {
  it('rolls back a clear regression under the cap (4.5% vs 0.5% at 100 req/s) within three checks, and says why', () => {
    const decisions = judge(createRandom(4), { rps: 100, canaryRate: 0.045, stableRate: 0.005 });
    const last = decisions[decisions.length - 1] as SequentialDecision;
    expect(last.decision).toBe('fail');
    expect(decisions.length).toBeLessThanOrEqual(3);
    expect(last.explanation).toMatch(
      /^canary errors \d\.\d% vs stable 0\.\d+% over (the first check of the rollout|all \d checks since the rollout began): worse by the 3-point margin, with 99% confidence/,
    );
    expect(last.confidence).toBeGreaterThanOrEqual(0.99);
    expect(last.difference.estimate).toBeGreaterThan(0.03);
  });

  it('passes identical high-traffic streams quickly and keeps passing', () => {
    const decisions = judge(createRandom(5), { rps: 300, canaryRate: 0.01, stableRate: 0.01, jitter: 0.2 });
    expect(failed(decisions)).toBe(false);
    const firstPass = decisions.findIndex((d) => d.decision === 'pass');
    expect(firstPass).toBeGreaterThanOrEqual(0);
    expect(firstPass).toBeLessThan(3);
    // Every step ends with a pass: it may advance.
    expect([14, 24, 39].map((i) => decisions[i]?.decision)).toEqual(['pass', 'pass', 'pass']);
    const pass = decisions[firstPass] as SequentialDecision;
    expect(pass.explanation).toMatch(/not worse by the 3-point margin, with 95% confidence/);
    expect(pass.difference.upper).toBeLessThan(0.03);
  });

  it('catches a regression that starts at a later step, because evidence restarts at each step', () => {
    // Healthy for the 15 checks of step 1, +5 points from the first check of step 2.
    const decisions = judge(createRandom(6), { rps: 50, canaryRate: (check) => (check > 15 ? 0.06 : 0.01), stableRate: 0.01 });
    expect(failed(decisions)).toBe(true);
    expect(decisions.length - 15).toBeLessThanOrEqual(3);
    expect((decisions[decisions.length - 1] as SequentialDecision).explanation).toMatch(/over the last (check|\d checks), since step 2 began:/);
  });

  it('rolls back on the absolute cap when the margin alone would allow the canary', () => {
    const decisions = judge(createRandom(7), { rps: 100, canaryRate: 0.1, stableRate: 0.055 }, { margin: 0.2 });
    const last = decisions[decisions.length - 1] as SequentialDecision;
    expect(last.decision).toBe('fail');
    expect(last.explanation).toMatch(/above the 5\.0% cap, with 99% confidence/);
  });

  it('stays inconclusive at very low traffic and says how many more requests it needs', () => {
    const j = createErrorRateJudge();
    const d = j.observe({ canary: { requests: 3, errors: 0 }, stable: { requests: 27, errors: 0 }, step: 0 });
    expect(d.decision).toBe('inconclusive');
    expect(d.moreRequestsNeeded).toBeGreaterThan(0);
    expect(d.explanation).toMatch(/over 3 canary requests: not settled yet .*about [\d,]+ more canary requests needed/);
  });

  it('one error in three canary requests is not a rollback (a fixed 5% threshold would call it 33%)', () => {
    const j = createErrorRateJudge();
    const d = j.observe({ canary: { requests: 3, errors: 1 }, stable: { requests: 27, errors: 0 }, step: 0 });
    expect(d.decision).toBe('inconclusive');
  });

  it('treats a window without canary requests as no data, and accepts fractional counts from increase()', () => {
    const j = createErrorRateJudge();
    const empty = j.observe({ canary: { requests: 0, errors: 0 }, stable: { requests: 120.4, errors: 1.02 }, step: 0 });
    expect(empty.decision).toBe('inconclusive');
    expect(empty.explanation).toBe('no canary requests yet: nothing to judge');
    const fractional = j.observe({ canary: { requests: 612.7, errors: 5.1 }, stable: { requests: 5480.2, errors: 49.7 }, step: 0 });
    expect(fractional.canaryRequests).toBeCloseTo(612.7, 6);
    expect(Number.isFinite(fractional.difference.estimate)).toBe(true);
  });

  it('rejects settings outside (0, 1) with an invalid-input error naming the field', () => {
    expect(() => createErrorRateJudge({ alpha: 1.5 })).toThrow(CanaryError);
    expect(() => createErrorRateJudge({ margin: 0 })).toThrow(/"margin" must be between 0 and 1/);
  });
});
