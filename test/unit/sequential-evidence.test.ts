import { describe, expect, it } from 'vitest';
import {
  binomialLogLikelihoodRatio,
  normalMixtureRadius,
  standardNormalCdf,
  villeLogThreshold,
} from '../../src/analysis/sequential/evidence.js';
import { chooseLatencyThreshold, countSlowerThan, histogramQuantile } from '../../src/analysis/sequential/histogram.js';
import { createRandom, logFactorial } from '../../src/analysis/sequential/random.js';

const binomialPmf = (x: number, n: number, p: number) =>
  Math.exp(logFactorial(n) - logFactorial(x) - logFactorial(n - x) + x * Math.log(p) + (n - x) * Math.log1p(-p));

describe('likelihood ratios and boundaries (exact values)', () => {
  it('computes the binomial log likelihood ratio: 3 of 10 at 0.3 against 0.1 is 3·ln3 + 7·ln(7/9)', () => {
    expect(binomialLogLikelihoodRatio(3, 10, 0.1, 0.3)).toBeCloseTo(1.5366358680379855, 12);
    expect(binomialLogLikelihoodRatio(0, 0, 0.1, 0.3)).toBe(0);
  });

  it('matches Wald’s closed-form Bernoulli SPRT rejection line x = h + s·n', () => {
    // Wald (1947), Sequential Analysis, §5.3: reject p0 for p1 when x ≥ h1 + s·n with
    // g = ln(p1(1−p0) / (p0(1−p1))), s = ln((1−p0)/(1−p1)) / g, h1 = ln(1/α) / g.
    const p0 = 0.05;
    const p1 = 0.08;
    const alpha = 0.01;
    const g = Math.log((p1 * (1 - p0)) / (p0 * (1 - p1)));
    const s = Math.log((1 - p0) / (1 - p1)) / g;
    const h = Math.log(1 / alpha) / g;
    for (const n of [50, 200, 1000]) {
      expect(binomialLogLikelihoodRatio(h + s * n, n, p0, p1)).toBeCloseTo(villeLogThreshold(alpha), 9);
    }
  });

  it('is a martingale: the expected likelihood ratio under the null is exactly 1, and below 1 when the canary is better', () => {
    const total = 25;
    const share = 0.1;
    const alternative = 0.3;
    const expectation = (trueShare: number) => {
      let sum = 0;
      for (let x = 0; x <= total; x++) sum += binomialPmf(x, total, trueShare) * Math.exp(binomialLogLikelihoodRatio(x, total, share, alternative));
      return sum;
    };
    expect(expectation(share)).toBeCloseTo(1, 12);
    expect(expectation(0.05)).toBeLessThan(1);
  });

  it('keeps the exact probability of ever crossing 1/α under the null below α (Ville), for 2,000 looks', () => {
    // Dynamic programme over the number of events among n Bernoulli(p0) trials, looking after
    // every trial; paths that cross are absorbed.
    const p0 = 0.02;
    const p1 = 0.05;
    const alpha = 0.01;
    const threshold = villeLogThreshold(alpha);
    let alive = new Map<number, number>([[0, 1]]);
    let crossed = 0;
    for (let n = 1; n <= 2000; n++) {
      const next = new Map<number, number>();
      for (const [x, probability] of alive) {
        for (const [events, q] of [
          [x, 1 - p0],
          [x + 1, p0],
        ] as const) {
          if (binomialLogLikelihoodRatio(events, n, p0, p1) >= threshold) crossed += probability * q;
          else next.set(events, (next.get(events) ?? 0) + probability * q);
        }
      }
      alive = next;
    }
    expect(crossed).toBeLessThanOrEqual(alpha);
    // Not vacuous: the boundary is reachable and the test uses a fair share of its budget.
    expect(crossed).toBeGreaterThan(alpha / 10);
  });

  it('gives the normal-mixture confidence-sequence radius of Howard et al. (2021, eq. 14)', () => {
    // sqrt((V + ρ) · ln((V + ρ) / (ρ·a²))) with V = 100, ρ = 1, a = 0.05.
    expect(normalMixtureRadius(100, 1, 0.05)).toBeCloseTo(32.73018624234933, 9);
    // Wider at a stricter level, and wider (but slower than linearly) with more variance.
    expect(normalMixtureRadius(100, 1, 0.01)).toBeGreaterThan(normalMixtureRadius(100, 1, 0.05));
    expect(normalMixtureRadius(400, 1, 0.05)).toBeLessThan(4 * normalMixtureRadius(100, 1, 0.05));
  });

  it('computes standard normal quantiles to 6 digits', () => {
    expect(standardNormalCdf(1.959963985)).toBeCloseTo(0.975, 6);
    expect(standardNormalCdf(-2.326347874)).toBeCloseTo(0.01, 6);
    expect(standardNormalCdf(0)).toBeCloseTo(0.5, 6);
  });
});

describe('histogram buckets', () => {
  const buckets = [
    { le: 0.1, count: 10 },
    { le: 0.2, count: 20 },
    { le: 0.5, count: 28 },
    { le: Infinity, count: 30 },
  ];

  it('interpolates quantiles within a bucket as histogram_quantile does', () => {
    // rank 0.75·30 = 22.5 falls in (0.2, 0.5] holding 8 requests: 0.2 + 0.3·(2.5/8).
    expect(histogramQuantile(0.75, buckets)).toBeCloseTo(0.2 + 0.3 * (2.5 / 8), 12);
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.15, 12);
    // In the +Inf bucket the answer is the highest finite bound.
    expect(histogramQuantile(0.99, buckets)).toBe(0.5);
    expect(histogramQuantile(0.95, [{ le: Infinity, count: 0 }])).toBeNaN();
  });

  it('counts requests slower than the nearest bucket boundary', () => {
    expect(countSlowerThan(buckets, 0.2)).toBe(10);
    expect(countSlowerThan(buckets, 0.45)).toBe(2);
  });

  it('repairs non-monotonic counts from increase() extrapolation', () => {
    const wobbly = [
      { le: 0.1, count: 10.2 },
      { le: 0.2, count: 10.1 },
      { le: Infinity, count: 12 },
    ];
    expect(countSlowerThan(wobbly, 0.2)).toBeCloseTo(12 - 10.2, 12);
  });

  it('chooses the smallest boundary at or above stable’s quantile as the latency threshold', () => {
    expect(chooseLatencyThreshold(buckets, 0.75)).toBe(0.5);
    expect(chooseLatencyThreshold(buckets, 0.5)).toBe(0.2);
    expect(chooseLatencyThreshold([{ le: Infinity, count: 0 }], 0.95)).toBeNull();
  });
});

describe('seeded random variates', () => {
  it('repeats a stream for a seed and differs between seeds', () => {
    const a = createRandom(42);
    const b = createRandom(42);
    const c = createRandom(43);
    const draws = [a.uniform(), a.uniform(), a.uniform()];
    expect([b.uniform(), b.uniform(), b.uniform()]).toEqual(draws);
    expect(c.uniform()).not.toBe(draws[0]);
  });

  it('draws binomial, Poisson and gamma variates with the right means', () => {
    const random = createRandom(7);
    const mean = (draw: () => number, n = 20000) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += draw();
      return sum / n;
    };
    expect(mean(() => random.binomial(300, 0.01))).toBeCloseTo(3, 1);
    expect(mean(() => random.binomial(30000, 0.2))).toBeCloseTo(6000, -1);
    expect(mean(() => random.poisson(4))).toBeCloseTo(4, 1);
    expect(mean(() => random.poisson(900))).toBeCloseTo(900, -1);
    expect(mean(() => random.gamma(0.5, 2))).toBeCloseTo(1, 1);
  });
});
