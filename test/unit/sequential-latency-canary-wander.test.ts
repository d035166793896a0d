// The canary's own latency wander (canary-wander.ts): a regression's onset is not wander, a
// wander is, and nothing is known before the canary's first windows.

import { describe, expect, it } from 'vitest';
import { createCanaryWander } from '../../src/analysis/sequential/canary-wander.js';
import { createRandom } from '../../src/analysis/sequential/random.js';

const N = 1200;

describe('the canary’s latency wander estimate', () => {
  it('judges the first windows with the first-window floor, before any difference', () => {
    const w = createCanaryWander();
    expect(w.rho()).toBeCloseTo(0.012, 6);
    w.add(60, N);
    expect(w.rho()).toBeCloseTo(0.012, 6);
  });

  it('leaves a regression’s onset out (5% → 14% above the line) but keeps the regression’s own windows', () => {
    const random = createRandom(3);
    const w = createCanaryWander();
    for (let i = 0; i < 12; i++) w.add(random.binomial(N, 0.05), N);
    const before = w.rho();
    w.add(random.binomial(N, 0.14), N);
    // Counted, this one difference alone is worth about 0.07 / 13 windows, plus its spread allowance.
    expect(w.rho()).toBeLessThan(Math.max(0.004, 1.5 * before));
    for (let i = 0; i < 5; i++) w.add(random.binomial(N, 0.14), N);
    expect(w.rho()).toBeLessThan(0.006);
    expect(w.windows()).toBe(17);
  });

  it('charges a wander of ±2.5 points a window at 5% at least its variance ratio (about 0.013)', () => {
    const random = createRandom(4);
    const w = createCanaryWander();
    for (let i = 0; i < 30; i++) {
      const p = Math.min(0.5, Math.max(0, 0.05 + 0.025 * random.normal()));
      w.add(random.binomial(N, p), N);
    }
    expect(w.rho()).toBeGreaterThan(0.0132);
  });

  it('keeps the old cap of 0.01 for a window of fewer than 50 requests, where an onset hides in binomial noise', () => {
    const random = createRandom(5);
    const w = createCanaryWander();
    // 30 requests a window: 5% above the line, then 14% (a 2× onset the outlier test cannot see).
    for (let i = 0; i < 12; i++) w.add(random.binomial(30, 0.05), 30);
    for (let i = 0; i < 3; i++) w.add(random.binomial(30, 0.14), 30);
    expect(w.rho()).toBeGreaterThan(0.01);
    expect(w.rho(30)).toBe(0.01);
    expect(w.rho(49)).toBe(0.01);
    expect(w.rho(50)).toBe(w.rho());
  });

  it('resumes from its saved state to the same estimate', () => {
    const random = createRandom(5);
    const w = createCanaryWander();
    for (let i = 0; i < 40; i++) w.add(random.binomial(N, 0.05 + 0.02 * random.uniform()), N);
    const resumed = createCanaryWander(JSON.parse(JSON.stringify(w.state())));
    expect(resumed.rho()).toBe(w.rho());
    expect(resumed.state().recent.length).toBeLessThanOrEqual(24);
  });
});
