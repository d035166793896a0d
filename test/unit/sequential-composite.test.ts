// The error-rate judge tests the policy's composite hypotheses (issue 15, classes 1, 4 and 7):
// "at most half the margin worse than stable, whatever stable's rate" against its least favourable
// point, and "above the cap" as the whole composite alternative. Seeded, binomial windows.

import { describe, expect, it } from 'vitest';
import { createErrorRateJudge, type ErrorRateJudgeConfig } from '../../src/analysis/sequential/binomial-sequential.js';
import { differenceNullLogLik, capNullLogLik, binomialLogLik } from '../../src/analysis/sequential/composite.js';
import { createRandom, type Random } from '../../src/analysis/sequential/random.js';
import type { SequentialDecision } from '../../src/analysis/sequential/types.js';

const CONFIG: ErrorRateJudgeConfig = { margin: 0.03, cap: 0.05, alpha: 0.005, beta: 0.05, minRequests: 20 };
const WEIGHTS = [10, 25, 50];
const stepOf = (i: number) => (i < 15 ? 0 : i < 25 ? 1 : 2);

/** The default schedule's 40 checks (then held at 50%), binomial counts; stops at the first fail. */
function rollout(random: Random, o: { rps: number; stable: number; canary: number; checks?: number; config?: ErrorRateJudgeConfig }): SequentialDecision[] {
  const judge = createErrorRateJudge(o.config ?? CONFIG);
  const out: SequentialDecision[] = [];
  for (let i = 0; i < (o.checks ?? 40); i++) {
    const step = stepOf(i);
    const share = (WEIGHTS[step] as number) / 100;
    const nc = Math.round(o.rps * 60 * share);
    const ns = Math.round(o.rps * 60 * (1 - share));
    const d = judge.observe({ step, canary: { requests: nc, errors: random.binomial(nc, o.canary) }, stable: { requests: ns, errors: random.binomial(ns, o.stable) } });
    out.push(d);
    if (d.decision === 'fail') break;
  }
  return out;
}
const failed = (ds: SequentialDecision[]) => ds.some((d) => d.decision === 'fail');
const last = (ds: SequentialDecision[]) => ds[ds.length - 1] as SequentialDecision;

describe('the least favourable point of the composite null', () => {
  it('is the sides’ own rates when they fit the null, else the boundary pc = ps + δ', () => {
    // Canary 10 of 1000, stable 0 of 9000, δ = 1.5 points: 1% vs 0% is inside the null.
    expect(differenceNullLogLik(10, 1000, 0, 9000, 0.015)).toBeCloseTo(binomialLogLik(10, 1000, 0.01), 6);
    // Canary 50 of 1000 against stable 0 of 9000: the best null point is stable just above 0, canary at ps + 1.5 points.
    const boundary = differenceNullLogLik(50, 1000, 0, 9000, 0.015);
    expect(boundary).toBeLessThan(binomialLogLik(50, 1000, 0.05));
    for (const ps of [0, 0.001, 0.003, 0.01]) expect(boundary).toBeGreaterThanOrEqual(binomialLogLik(50, 1000, ps + 0.015) + binomialLogLik(0, 9000, ps) - 1e-9);
    expect(capNullLogLik(40, 1000, 0.05)).toBeCloseTo(binomialLogLik(40, 1000, 0.04), 9);
    expect(capNullLogLik(60, 1000, 0.05)).toBeCloseTo(binomialLogLik(60, 1000, 0.05), 9);
  });
});

describe('zero-error stables (class 1)', () => {
  it('promotes a canary at 1% against a stable at 0% at 1000 req/s: no evidence against "at most 1.5 points worse"', () => {
    const random = createRandom(15);
    for (let i = 0; i < 5; i++) {
      const ds = rollout(random, { rps: 1000, stable: 0, canary: 0.01 });
      expect(failed(ds)).toBe(false);
      expect(last(ds).evidence).toBeLessThan(1);
    }
  });

  it('promotes canaries 0.5 to 1 point worse than a near-zero stable (0.01%) at 50 to 1000 req/s', () => {
    const random = createRandom(16);
    let rollbacks = 0;
    for (const rps of [50, 200, 1000]) for (const worse of [0.005, 0.01]) for (let i = 0; i < 4; i++) if (failed(rollout(random, { rps, stable: 0.0001, canary: 0.0001 + worse }))) rollbacks++;
    expect(rollbacks).toBe(0);
  });

  it('still rolls back a canary 5 points worse than a zero-error stable in a median of 3 checks or fewer at 50 req/s', () => {
    const random = createRandom(17);
    const lengths: number[] = [];
    // 41 rollouts: with 9 the median moved by a check when one rollout's luck changed.
    for (let i = 0; i < 41; i++) {
      const ds = rollout(random, { rps: 50, stable: 0, canary: 0.05 });
      expect(failed(ds)).toBe(true);
      lengths.push(ds.length);
    }
    expect(lengths.sort((a, b) => a - b)[20]).toBeLessThanOrEqual(3);
  });
});

describe('a canary a little over a cap (class 4)', () => {
  it('rolls back a canary at 6% against a 5% cap (stable 4%): evidence grows with traffic', () => {
    // Exactly 6% and 4% of each window's requests: no luck either way. A point alternative at
    // 7.5% drifts towards "fine" at 6% however much traffic comes; the composite one must not.
    const judge = createErrorRateJudge(CONFIG);
    const ds: SequentialDecision[] = [];
    for (let i = 0; i < 120 && !failed(ds); i++) {
      const step = stepOf(i);
      const share = (WEIGHTS[step] as number) / 100;
      const nc = 50 * 60 * share;
      const ns = 50 * 60 * (1 - share);
      ds.push(judge.observe({ step, canary: { requests: nc, errors: 0.06 * nc }, stable: { requests: ns, errors: 0.04 * ns } }));
    }
    expect(failed(ds)).toBe(true);
    expect(last(ds).explanation).toMatch(/above the 5\.0% cap/);
    expect(last(ds).evidence).toBeGreaterThanOrEqual(200);
  });
});

describe('messages that are true (class 7)', () => {
  it('does not say "by more than the margin" when the estimate is under it', () => {
    // Stable 0%, canary 2.4%: beyond the 1.5 points the policy lets pass, under the 3-point margin.
    const random = createRandom(7);
    const ds = rollout(random, { rps: 1000, stable: 0, canary: 0.024 });
    expect(failed(ds)).toBe(true);
    expect(last(ds).explanation).not.toMatch(/more than the 3-point margin/);
    expect(last(ds).explanation).toMatch(/more than the 1\.5-point worse that the policy lets pass/);
  });
});

describe('validity over the composite null, by simulation (item 8)', () => {
  // At the null's boundary (canary = stable + half the margin) for stable rates from 0 to 10%,
  // the false rollback rate stays within alpha. alpha is 5% here so that 150 rollouts per rate
  // can show a violation; each rollout is the default 40 checks at 20 or 200 req/s.
  const alpha = 0.05;
  for (const stable of [0, 0.0001, 0.01, 0.1]) {
    it(`rolls back at most alpha of canaries at stable ${stable * 100}% + 1.5 points`, () => {
      const random = createRandom(8000 + Math.round(stable * 1e5));
      let rollbacks = 0;
      const runs = 150;
      for (let i = 0; i < runs; i++) {
        const rps = i % 2 ? 20 : 200;
        if (failed(rollout(random, { rps, stable, canary: stable + 0.015, config: { ...CONFIG, cap: null, alpha } }))) rollbacks++;
      }
      expect(rollbacks / runs).toBeLessThanOrEqual(alpha);
    });
  }

  it('rolls back at most alpha of canaries exactly at the cap', () => {
    const random = createRandom(8100);
    let rollbacks = 0;
    const runs = 150;
    for (let i = 0; i < runs; i++) if (failed(rollout(random, { rps: i % 2 ? 20 : 200, stable: 0.05, canary: 0.05, config: { ...CONFIG, alpha } }))) rollbacks++;
    expect(rollbacks / runs).toBeLessThanOrEqual(alpha);
  });
});

/**
 * The engine's step rules (src/rollout/steps.ts), replayed on the judge alone: a step ends on a
 * pass, or at its planned checks when nothing is adverse; adverse evidence holds it up to its
 * planned checks again; a step whose hold ends on adverse evidence is rolled back, and one that
 * is only still holding (evidence too weak for that) stays held until the judge decides — here at
 * most 6× its planned checks, ending 'stuck'. Returns how the rollout ended.
 */
function engineLike(random: Random, o: { rps: number; stable: number; canary: number; config: ErrorRateJudgeConfig }): 'promoted' | 'breach' | 'held' | 'stuck' {
  const planned = [15, 10, 15];
  const judge = createErrorRateJudge({ ...o.config, stepChecks: planned, plannedSteps: 3, plannedChecks: 40 });
  for (let step = 0; step < planned.length; step++) {
    const share = (WEIGHTS[step] as number) / 100;
    const nc = Math.round(o.rps * 60 * share);
    const ns = Math.round(o.rps * 60 * (1 - share));
    for (let done = 1; ; done++) {
      const d = judge.observe({ step, canary: { requests: nc, errors: random.binomial(nc, o.canary) }, stable: { requests: ns, errors: random.binomial(ns, o.stable) } });
      if (d.decision === 'fail') return 'breach';
      if (done < (planned[step] as number)) continue;
      if (d.decision === 'pass' || (d.adverse === null && !d.holding)) break;
      if (done >= 2 * (planned[step] as number) && d.adverse !== null) return 'held';
      if (done >= 6 * (planned[step] as number)) return 'stuck';
    }
  }
  return 'promoted';
}

describe('alpha bounds every way back, the held step too (item 5)', () => {
  const alpha = 0.05;
  it('rolls back at most alpha of canaries exactly at the 5% cap, counting held steps that run out', () => {
    const random = createRandom(5005);
    const ends = { promoted: 0, breach: 0, held: 0, stuck: 0 };
    const runs = 150;
    for (let i = 0; i < runs; i++) ends[engineLike(random, { rps: i % 2 ? 10 : 100, stable: 0.05, canary: 0.05, config: { ...CONFIG, alpha } })]++;
    expect((ends.breach + ends.held) / runs).toBeLessThanOrEqual(alpha);
  });

  it('rolls back at most alpha of canaries at stable + 1.5 points, counting held steps that run out', () => {
    const random = createRandom(5006);
    let rollbacks = 0;
    const runs = 150;
    for (let i = 0; i < runs; i++) if (engineLike(random, { rps: i % 2 ? 10 : 100, stable: 0.01, canary: 0.025, config: { ...CONFIG, cap: null, alpha } }) !== 'promoted') rollbacks++;
    expect(rollbacks / runs).toBeLessThanOrEqual(alpha);
  });

  it('still holds a step whose estimate is above the cap, and ends the hold without adverse evidence unless it reaches alpha', () => {
    const judge = createErrorRateJudge({ ...CONFIG, stepChecks: [3], plannedSteps: 1 });
    const ds: SequentialDecision[] = [];
    for (let i = 0; i < 6; i++) ds.push(judge.observe({ step: 0, canary: { requests: 300, errors: 16 }, stable: { requests: 2700, errors: 135 } }));
    expect(ds[2]?.adverse).toMatch(/above the 5\.0% cap/);
    expect(ds[5]?.decision).not.toBe('fail');
    expect(ds[5]?.adverse).toBeNull();
    // Too weak to roll back on within alpha, and still no reason to raise traffic: it keeps holding.
    expect(ds[5]?.holding).toMatch(/above the 5\.0% cap/);
    expect(ds[5]?.decision).not.toBe('pass');
  });
});

describe('bounded judge state (issue 16 item 10)', () => {
  it('snapshots no larger at 10,000 checks than at 1,000', () => {
    const random = createRandom(10);
    const judge = createErrorRateJudge(CONFIG);
    let at1000 = 0;
    for (let i = 1; i <= 10_000; i++) {
      judge.observe({ step: 2, canary: { requests: 30, errors: random.binomial(30, 0.01) }, stable: { requests: 30, errors: random.binomial(30, 0.01) } });
      if (i === 1000) at1000 = JSON.stringify(judge.snapshot()).length;
    }
    const at10000 = JSON.stringify(judge.snapshot()).length;
    expect(at10000).toBeLessThanOrEqual(at1000 * 1.02);
  });
});
