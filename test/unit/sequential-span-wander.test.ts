// The canary's wander as each possible onset sees it (span-wander.ts; issue 15, item 6): over a
// stable too quiet to speak for the canary's wander, a regression's onset — one jump of the
// canary's rate — must not be taken for wander by the span that tests that very onset.

import { describe, expect, it } from 'vitest';
import { createErrorRateJudge } from '../../src/analysis/sequential/binomial-sequential.js';
import { createDispersionEstimator, dispersionFromBaseline } from '../../src/analysis/sequential/dispersion.js';
import { createRandom } from '../../src/analysis/sequential/random.js';
import { spanWanderIncrement, spanWanderRho } from '../../src/analysis/sequential/span-wander.js';
import { DEFAULT_SCHEDULE, simulateBaseline, simWindow, type SideSpec } from '../support/realistic-traffic.js';

const ALLOWANCE = { allowance: 1, spreadAllowance: 2 };

describe('a span’s own estimate of the canary’s wander', () => {
  // Canary windows of 1,000 requests: 1% wandering a little, then a jump to 6% at window 6.
  const errors = [10, 12, 9, 11, 10, 12, 60, 62, 58, 61];
  const onset = 6;

  function spanFigures(start: number) {
    const rollout = createDispersionEstimator(undefined, ALLOWANCE.allowance, ALLOWANCE.spreadAllowance);
    const span = { windows: 0, sums: [0, 0, 0] };
    const canary = { events: 0, requests: 0 };
    for (let i = 0; i < errors.length; i++) {
      const now = { events: errors[i] as number, requests: 1000 };
      if (i >= start) {
        const inc = spanWanderIncrement(span, canary, now, rollout.last(), rollout.moments());
        span.sums = span.sums.map((v, k) => v + inc[k]!);
        span.windows += 1;
        canary.events += now.events;
        canary.requests += now.requests;
      }
      rollout.addStable(now.events, now.requests);
    }
    return { span, rollout };
  }

  it('starts from the differences before the onset and never counts the one that straddles it', () => {
    const { span, rollout } = spanFigures(onset);
    // 5 differences before the onset, 3 within the span: 8 of the rollout's 9.
    expect(rollout.moments().count).toBe(9);
    expect(span.sums[1]).toBe(8);
    const rho = spanWanderRho(span, 0, rollout.moments(), ALLOWANCE, () => rollout.rho());
    // The rollout's own estimate takes the jump for wander; the span's does not.
    expect(rollout.moments().sum / rollout.moments().count).toBeGreaterThan(0.005);
    expect(span.sums[0]! / span.sums[1]!).toBeLessThan(0.001);
    expect(rho).toBeLessThan(rollout.rho() / 3);
  });

  it('normalizes a difference within the span by the span’s own rate', () => {
    // Within the span (6% windows) a 4-error swing is a small wander; normalized by the rollout's
    // pooled rate (about 3%) it would count about twice as much.
    const p = (60 + 62 + 0.5) / 2001;
    const c = ((0.062 - 0.06) ** 2) / (2 * p * (1 - p)) - (1 / 1000 + 1 / 1000) / 2;
    const first = spanWanderIncrement({ windows: 1, sums: [0, 1, 0] }, { events: 60, requests: 1000 }, { events: 62, requests: 1000 }, { rate: 0.06, requests: 1000 }, { sum: 0, count: 0, sumSq: 0, seen: 0 });
    expect(first[0]).toBeCloseTo(c, 12);
    expect(first[1]).toBe(1);
  });

  it('uses the rollout’s estimate for a span saved before spans kept their own', () => {
    const rollout = createDispersionEstimator(undefined, 1, 2);
    for (const e of errors) rollout.addStable(e, 1000);
    expect(spanWanderRho({ windows: 4, sums: [] }, 12, rollout.moments(), ALLOWANCE, () => rollout.rho())).toBe(rollout.rho());
  });
});

describe('a +5-point regression over a quiet stable, beginning mid-step', () => {
  const side = (errorRate: number, concentration: number): SideSpec => ({ errorRate, concentration, medianLatency: 0.1, sigma: 0.5 });

  /** Checks from the first regressed window to the rollback, under the engine's step rules; null if promoted. */
  function checksToRollback(seed: number): number | null {
    const random = createRandom(seed);
    const rps = 10 * 5 ** random.uniform();
    const base = 0.001 * 3 ** random.uniform();
    const stable = side(base, 100 + 200 * random.uniform());
    const canary = side(base, 100 + 200 * random.uniform());
    const regressed = { ...canary, errorRate: base + 0.05 };
    const judge = createErrorRateJudge(
      { margin: 0.03, cap: 0.05, alpha: 0.005, beta: 0.05, minRequests: 20, plannedSteps: 3, plannedChecks: 40, stepChecks: DEFAULT_SCHEDULE.map((s) => s.checks) },
      { dispersion: dispersionFromBaseline(simulateBaseline(random, stable, rps).moments) },
    );
    const onset = [7, 20, 32][seed % 3] as number;
    let index = 0;
    for (let step = 0; step < DEFAULT_SCHEDULE.length; step++) {
      const s = DEFAULT_SCHEDULE[step] as (typeof DEFAULT_SCHEDULE)[number];
      for (let c = 0; ; c++) {
        const w = { step, canary: simWindow(random, index >= onset ? regressed : canary, rps * s.weight), stable: simWindow(random, stable, rps * (1 - s.weight)) };
        index++;
        const d = judge.observe(w);
        if (d.decision === 'fail') return index - onset;
        if (c + 1 >= s.checks) {
          if (!d.adverse) break;
          if (c + 1 >= 2 * s.checks) return index - onset;
        }
      }
    }
    return null;
  }

  it('is rolled back in a median of 6 checks at 10–50 req/s, none promoted (median 12 and 2 of 150 promoted when the span took the onset for wander)', () => {
    const delays = Array.from({ length: 150 }, (_, i) => checksToRollback(4200 + i));
    expect(delays.filter((d) => d === null)).toHaveLength(0);
    const sorted = (delays as number[]).sort((a, b) => a - b);
    expect(sorted.every((d) => d > 0)).toBe(true);
    expect(sorted[Math.floor((sorted.length - 1) / 2)]).toBeLessThanOrEqual(6);
  });
});
