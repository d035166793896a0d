import { describe, expect, it } from 'vitest';
import { standardNormalCdf } from '../../src/analysis/sequential/evidence.js';
import type { Bucket } from '../../src/analysis/sequential/histogram.js';
import { createLatencyJudge, type LatencyDecision } from '../../src/analysis/sequential/latency-sequential.js';
import { createRandom, type Random } from '../../src/analysis/sequential/random.js';

const BOUNDS = [0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, Infinity];

/** One side's bucket counts for a window: lognormal latencies, one conditional binomial per bucket. */
function buckets(random: Random, requests: number, median: number, sigma: number): Bucket[] {
  const out: Bucket[] = [];
  let remaining = requests;
  let cumulative = 0;
  let previous = 0;
  for (const le of BOUNDS) {
    const cdf = Number.isFinite(le) ? standardNormalCdf(Math.log(le / median) / sigma) : 1;
    const drawn = previous < 1 ? random.binomial(remaining, Math.min(1, (cdf - previous) / (1 - previous))) : 0;
    remaining -= drawn;
    cumulative += drawn;
    previous = cdf;
    out.push({ le, count: cumulative });
  }
  return out;
}

interface Options {
  rps: number;
  median: number;
  sigma: number;
  /** Canary latency multiplier by check (1 = same as stable). */
  factor?: (check: number) => number;
  /** Per-side per-minute jitter of the log-median. */
  jitter?: number;
}

function run(random: Random, o: Options, threshold: number, limit?: number): LatencyDecision[] {
  const judge = createLatencyJudge({ threshold, ...(limit === undefined ? {} : { limit }) });
  const decisions: LatencyDecision[] = [];
  let check = 0;
  for (const [step, weight, checks] of [
    [0, 0.1, 15],
    [1, 0.25, 10],
    [2, 0.5, 15],
  ] as const) {
    for (let c = 0; c < checks; c++) {
      check++;
      const total = random.poisson(o.rps * 60);
      const canary = random.binomial(total, weight);
      const j = () => Math.exp((o.jitter ?? 0) * random.normal());
      const d = judge.observe({
        step,
        canary: { buckets: buckets(random, canary, o.median * (o.factor?.(check) ?? 1) * j(), o.sigma) },
        stable: { buckets: buckets(random, total - canary, o.median * j(), o.sigma) },
      });
      decisions.push(d);
      if (d.decision === 'fail') return decisions;
    }
  }
  return decisions;
}

const failed = (ds: LatencyDecision[]) => ds.some((d) => d.decision === 'fail');

describe('sequential latency judge', () => {
  it('rolls back identical latency streams in at most α of rollouts, with per-minute jitter too', () => {
    const random = createRandom(11);
    let runs = 0;
    let rollbacks = 0;
    for (const rps of [0.5, 5, 50, 300]) {
      for (let i = 0; i < 150; i++) {
        const median = 0.05 + random.uniform() * 0.2;
        const sigma = 0.4 + random.uniform() * 0.3;
        const threshold = BOUNDS.find((b) => b >= median * Math.exp(1.645 * sigma)) ?? 1;
        runs++;
        if (failed(run(random, { rps, median, sigma, jitter: i % 2 ? 0.04 : 0 }, threshold))) rollbacks++;
      }
    }
    expect(rollbacks / runs).toBeLessThanOrEqual(0.01);
  });

  it('rolls back a 2× latency regression at 100 req/s within two checks, in plain words with the P95s', () => {
    const decisions = run(createRandom(12), { rps: 100, median: 0.1, sigma: 0.5, factor: () => 2 }, 0.3);
    const last = decisions[decisions.length - 1] as LatencyDecision;
    expect(last.decision).toBe('fail');
    expect(decisions.length).toBeLessThanOrEqual(2);
    expect(last.explanation).toMatch(/^canary requests slower than 300 ms: \d+\.\d% vs stable \d\.\d+% over [^:]+: more than 1\.5× stable's, with 99% confidence \(P95 \d+ ms vs \d+ ms/);
    expect(last.canaryQuantile).toBeGreaterThan(1.5 * last.stableQuantile);
  });

  it('passes identical high-traffic streams', () => {
    const decisions = run(createRandom(13), { rps: 300, median: 0.1, sigma: 0.5, jitter: 0.03 }, 0.3);
    expect(failed(decisions)).toBe(false);
    // Every step ends with a pass: it may advance.
    expect([14, 24, 39].map((i) => decisions[i]?.decision)).toEqual(['pass', 'pass', 'pass']);
    expect((decisions.find((d) => d.decision === 'pass') as LatencyDecision).explanation).toMatch(/not more than 1\.5× stable's, with 95% confidence/);
  });

  it('rolls back when the canary P95 is above the absolute limit', () => {
    // Stable is fast; the canary's median is 1.6 s, so well over 5% of its requests exceed 2 s.
    const decisions = run(createRandom(14), { rps: 50, median: 0.2, sigma: 0.5, factor: () => 8 }, 0.5, 2);
    const last = decisions[decisions.length - 1] as LatencyDecision;
    expect(last.decision).toBe('fail');
    expect(decisions.length).toBeLessThanOrEqual(2);
  });

  it('rolls back a 2× latency regression that begins mid-step at its first slow check, and names that check', () => {
    // Check 21 is the 6th check of the 25% step; before it the canary is as fast as stable.
    const random = createRandom(16);
    const delays: number[] = [];
    let last: LatencyDecision | undefined;
    for (let i = 0; i < 100; i++) {
      const decisions = run(random, { rps: 100, median: 0.1, sigma: 0.5, jitter: 0.03, factor: (check) => (check >= 21 ? 2 : 1) }, 0.3);
      last = decisions[decisions.length - 1];
      delays.push(last?.decision === 'fail' ? decisions.length - 20 : Number.POSITIVE_INFINITY);
    }
    expect(delays.filter((d) => d < 1)).toEqual([]);
    expect(delays.filter((d) => d === 1).length).toBeGreaterThanOrEqual(95);
    expect(Math.max(...delays)).toBeLessThanOrEqual(2);
    expect(last?.explanation).toMatch(/^canary requests slower than 300 ms: [\d.]+% vs stable [\d.]+% over the last (check|2 checks), from step 2, its (6th|7th) check: more than 1\.5× stable's/);
  });

  it('uses the nearest bucket boundary as the threshold and says which', () => {
    const decisions = run(createRandom(15), { rps: 20, median: 0.1, sigma: 0.5 }, 0.28);
    expect((decisions[0] as LatencyDecision).threshold).toBe(0.3);
  });
});
