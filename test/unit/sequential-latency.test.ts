import { describe, expect, it } from 'vitest';
import { cumulativeAt, smoothQuantile } from '../../src/analysis/sequential/histogram.js';
import { createLatencyJudge, type LatencyDecision } from '../../src/analysis/sequential/latency-sequential.js';
import { createRandom, type Random } from '../../src/analysis/sequential/random.js';
import { simulateBaseline, simulateRollout, simWindow, type SideSpec } from '../support/realistic-traffic.js';

// The latency judge tests the canary's P95 as the policy states it — against 1.5× stable's P95
// and against the 2 s cap — on lognormal latency (σ = 0.5) in ingress-nginx's default buckets.

const CONFIG = { ratio: 1.5, limit: 2, alpha: 0.005, beta: 0.05, minRequests: 20 };

function side(median: number): SideSpec {
  return { errorRate: 0.01, concentration: 200, medianLatency: median, sigma: 0.5 };
}

function rollout(random: Random, o: { rps: number; median: number; factor?: number; onset?: number }): LatencyDecision[] {
  const stable = side(o.median);
  const baseline = simulateBaseline(random, stable, o.rps);
  const judge = createLatencyJudge({ ...CONFIG, baseline: baseline.buckets });
  const windows = simulateRollout(random, {
    rps: o.rps,
    stable,
    canary: side(o.median),
    ...(o.factor === undefined ? {} : { regressed: { medianLatency: o.median * o.factor }, onset: o.onset ?? 0 }),
  });
  const out: LatencyDecision[] = [];
  for (const w of windows) {
    const d = judge.observe({ step: w.step, canary: { buckets: w.canary.buckets }, stable: { buckets: w.stable.buckets } });
    out.push(d);
    if (d.decision === 'fail') break;
  }
  return out;
}

const failed = (ds: LatencyDecision[]) => ds.some((d) => d.decision === 'fail');

describe('sequential latency judge', () => {
  it('rolls back at most 1% of equal canaries and at most 5% of 1.3× canaries, 0.5 to 200 req/s', () => {
    const random = createRandom(31);
    let equal = 0;
    let slower = 0;
    let runs = 0;
    for (const rps of [0.5, 10, 50, 200]) {
      for (let i = 0; i < 15; i++) {
        const median = 0.03 + 0.2 * random.uniform();
        runs++;
        if (failed(rollout(random, { rps, median }))) equal++;
        if (failed(rollout(random, { rps, median, factor: 1.3 }))) slower++;
      }
    }
    expect(equal / runs).toBeLessThanOrEqual(0.01);
    expect(slower / runs).toBeLessThanOrEqual(0.05);
  });

  it('rolls back every 2× and 3× canary at 10 to 200 req/s, wherever stable\'s P95 falls in the coarse buckets', () => {
    const random = createRandom(32);
    for (const rps of [10, 50, 200]) {
      for (const factor of [2, 3]) {
        for (const median of [0.03, 0.055, 0.1, 0.2]) {
          const ds = rollout(random, { rps, median, factor, onset: 15 });
          expect(failed(ds), `${factor}× at ${rps} req/s, median ${median}`).toBe(true);
          expect(ds.at(-1)?.explanation).toMatch(/canary P95 above 1\.5× stable's/);
        }
      }
    }
  });

  it('rolls back a canary with a 3 s P95 although stable is as slow, and says the 2 s cap holds for stable too', () => {
    const random = createRandom(33);
    const median = 3 / Math.exp(1.645 * 0.5);
    const ds = rollout(random, { rps: 20, median });
    expect(failed(ds)).toBe(true);
    expect(ds.at(-1)?.explanation).toMatch(/^canary P95 above the 2 s cap/);
    expect(ds.at(-1)?.explanation).toContain('above the 2 s cap too');
  });

  it('reads the canary P95 and the line it is held to from the same curve, and reports both', () => {
    const random = createRandom(34);
    const judge = createLatencyJudge(CONFIG);
    const d = judge.observe({ step: 0, canary: { buckets: simWindow(random, side(0.1), 20).buckets }, stable: { buckets: simWindow(random, side(0.1), 180).buckets } });
    expect(d.limitSeconds).toBeCloseTo(Math.min(2, 1.5 * d.stableQuantile), 9);
    expect(d.explanation).toMatch(/^canary P95 \d+ ms this step vs stable's \d+ ms/);
  });

  it('interpolates the distribution between coarse buckets with a monotone curve that stays within each bucket', () => {
    const buckets = [
      { le: 0.1, count: 885 },
      { le: 0.25, count: 998.7 },
      { le: 0.5, count: 1000 },
      { le: Infinity, count: 1000 },
    ];
    // Lognormal(median 55 ms, σ 0.5): the true P95 is 125 ms; a straight line in the bucket says 186 ms.
    expect(smoothQuantile(0.95, buckets)).toBeGreaterThan(0.11);
    expect(smoothQuantile(0.95, buckets)).toBeLessThan(0.16);
    for (const x of [0.1, 0.12, 0.2, 0.25, 0.3, 0.5]) {
      expect(cumulativeAt(buckets, x)).toBeGreaterThanOrEqual(885 - 1e-9);
      expect(cumulativeAt(buckets, x)).toBeLessThanOrEqual(1000 + 1e-9);
    }
    expect(cumulativeAt(buckets, 0.25)).toBeCloseTo(998.7, 6);
  });

  it('continues the same evidence after snapshot and restore', () => {
    const random = createRandom(35);
    const windows = simulateRollout(random, { rps: 20, stable: side(0.1), canary: side(0.1), regressed: { medianLatency: 0.25 }, onset: 20 });
    const a = createLatencyJudge(CONFIG);
    windows.slice(0, 18).forEach((w) => a.observe({ step: w.step, canary: { buckets: w.canary.buckets }, stable: { buckets: w.stable.buckets } }));
    const b = createLatencyJudge(CONFIG, { state: JSON.parse(JSON.stringify(a.snapshot())) });
    for (const w of windows.slice(18, 30)) {
      const win = { step: w.step, canary: { buckets: w.canary.buckets }, stable: { buckets: w.stable.buckets } };
      expect(b.observe(win)).toEqual(a.observe(win));
    }
  });
});
