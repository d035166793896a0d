// False rollbacks at the edges of the null under the corpus's wander, in-process, with the
// engine's step rules (as in test/unit/sequential-wander-validity.test.ts and
// sequential-latency-wander.test.ts), with as many seeded rollouts as a figure needs.
// Usage (after npm run build):
//   node dist/scripts/wander-validity-sim.js errors  RUNS SEED STABLE DELTA ALPHA RPS_LOW RPS_HIGH
//   node dist/scripts/wander-validity-sim.js latency RUNS SEED FACTOR TAU RPS_LOW RPS_HIGH
// errors: stable at STABLE, the canary DELTA worse, each side's rate a Beta per 30 s scrape.
// latency: stable's median 100 ms, the canary's FACTOR × it, its median moved by a log-normal
// factor of sd TAU every scrape (stable's holds still); alpha 0.5%.

import { createErrorRateJudge } from '../src/analysis/sequential/binomial-sequential.js';
import { dispersionFromBaseline } from '../src/analysis/sequential/dispersion.js';
import { createLatencyJudge } from '../src/analysis/sequential/latency-sequential.js';
import { createRandom, type Random } from '../src/analysis/sequential/random.js';
import type { SequentialDecision } from '../src/analysis/sequential/types.js';
import { DEFAULT_SCHEDULE, simulateBaseline, simWindow, type SideSpec, type SimSide } from '../test/support/realistic-traffic.js';

const STEP_CHECKS = DEFAULT_SCHEDULE.map((s) => s.checks);

/** The engine's step rules: a step ends on a pass or, with nothing adverse, at its planned checks. */
function rolledBack(observe: (step: number, weight: number) => SequentialDecision): boolean {
  for (let step = 0; step < DEFAULT_SCHEDULE.length; step++) {
    const s = DEFAULT_SCHEDULE[step] as (typeof DEFAULT_SCHEDULE)[number];
    for (let done = 1; ; done++) {
      const d = observe(step, s.weight);
      if (d.decision === 'fail') return true;
      if (done < s.checks) continue;
      if (d.decision === 'pass' || (d.adverse === null && !d.holding)) break;
      if (done >= 2 * s.checks && d.adverse !== null) return true;
      if (done >= 4 * s.checks) break;
    }
  }
  return false;
}

const add = (a: SimSide, b: SimSide): SimSide => ({
  requests: a.requests + b.requests,
  errors: a.errors + b.errors,
  buckets: a.buckets.map((x, i) => ({ le: x.le, count: x.count + (b.buckets[i]?.count ?? 0) })),
});

function errorRollout(random: Random, rps: number, stableRate: number, delta: number, alpha: number): boolean {
  const side = (rate: number): SideSpec => ({ errorRate: rate, concentration: 100 + 200 * random.uniform(), medianLatency: 0.1, sigma: 0.5 });
  const stable = side(stableRate);
  const canary = side(stableRate + delta);
  const baseline = simulateBaseline(random, stable, rps);
  const judge = createErrorRateJudge(
    { margin: 0.03, cap: null, alpha, beta: 0.05, minRequests: 20, plannedSteps: 3, plannedChecks: 40, stepChecks: STEP_CHECKS },
    { dispersion: dispersionFromBaseline(baseline.moments) },
  );
  return rolledBack((step, weight) => judge.observe({ step, canary: simWindow(random, canary, rps * weight), stable: simWindow(random, stable, rps * (1 - weight)) }));
}

function latencyRollout(random: Random, rps: number, factor: number, tau: number): boolean {
  const stable: SideSpec = { errorRate: 0.01, concentration: 200, medianLatency: 0.1, sigma: 0.5 };
  const canary: SideSpec = { ...stable, medianLatency: 0.1 * factor };
  const baseline = simulateBaseline(random, stable, rps);
  const judge = createLatencyJudge({ ratio: 1.5, limit: 2, alpha: 0.005, beta: 0.05, minRequests: 20, plannedSteps: 3, plannedChecks: 40, stepChecks: STEP_CHECKS, baseline: baseline.buckets });
  const scrape = (r: number) => simWindow(random, { ...canary, medianLatency: canary.medianLatency * Math.exp(tau * random.normal()) }, r, 1);
  return rolledBack((step, weight) =>
    judge.observe({ step, canary: { buckets: add(scrape(rps * weight), scrape(rps * weight)).buckets }, stable: { buckets: simWindow(random, stable, rps * (1 - weight)).buckets } }),
  );
}

const [mode, ...rest] = process.argv.slice(2);
const args = rest.map(Number);
if (mode !== 'errors' && mode !== 'latency') {
  console.error('usage: wander-validity-sim.js errors RUNS SEED STABLE DELTA ALPHA RPS_LOW RPS_HIGH | latency RUNS SEED FACTOR TAU RPS_LOW RPS_HIGH');
  process.exit(2);
}
const [runs = 1000, seed = 1] = args;
const random = createRandom(seed);
const [low, high] = mode === 'errors' ? [args[5] ?? 10, args[6] ?? 200] : [args[4] ?? 10, args[5] ?? 200];
let rollbacks = 0;
for (let i = 0; i < runs; i++) {
  const rps = low * (high / low) ** random.uniform();
  const back = mode === 'errors' ? errorRollout(random, rps, args[2] ?? 0, args[3] ?? 0.015, args[4] ?? 0.005) : latencyRollout(random, rps, args[2] ?? 1.47, args[3] ?? 0.1);
  if (back) rollbacks++;
}
console.log(`${mode} ${rest.slice(2).join(' ')} at ${low}–${high} req/s: rolled back ${rollbacks} of ${runs} (${((100 * rollbacks) / runs).toFixed(2)}%)`);
