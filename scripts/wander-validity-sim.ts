// False rollbacks at the edges of the null under the corpus's wander, in-process, with the
// engine's step rules (as in test/unit/sequential-wander-validity.test.ts and
// sequential-latency-wander.test.ts), with as many seeded rollouts as a figure needs.
// Usage (after npm run build):
//   node dist/scripts/wander-validity-sim.js errors  RUNS SEED STABLE DELTA ALPHA RPS_LOW RPS_HIGH
//   node dist/scripts/wander-validity-sim.js latency RUNS SEED FACTOR TAU RPS_LOW RPS_HIGH
//   node dist/scripts/wander-validity-sim.js latency-checks RUNS SEED FACTOR TAU RPS_LOW RPS_HIGH [ONSET]
// errors: stable at STABLE, the canary DELTA worse, each side's rate a Beta per 30 s scrape.
// latency: stable's median 100 ms, the canary's FACTOR × it, its median moved by a log-normal
// factor of sd TAU every scrape (stable's holds still); alpha 0.5%. latency prints where the
// rollbacks came (step/check); latency-checks is the speed side of the same replay: the canary
// FACTOR × stable from check ONSET + 1 (default 0: from the first check; e.g. 2 or 3 with TAU 0),
// 1× before it, and checks to rollback counted from the onset (median / p90 / mean, how many were
// rolled back before the onset and how many never). A mid-step onset is what a canary's own wander
// estimate sees as one large jump of its share above the line.

import { createErrorRateJudge } from '../src/analysis/sequential/binomial-sequential.js';
import { dispersionFromBaseline } from '../src/analysis/sequential/dispersion.js';
import { createLatencyJudge } from '../src/analysis/sequential/latency-sequential.js';
import { createRandom, type Random } from '../src/analysis/sequential/random.js';
import { addSides, DEFAULT_SCHEDULE, rollbackUnderStepRules, simulateBaseline, simWindow, type SideSpec, type StepRulesRollback as Rollback } from '../test/support/realistic-traffic.js';

const STEP_CHECKS = DEFAULT_SCHEDULE.map((s) => s.checks);


function errorRollout(random: Random, rps: number, stableRate: number, delta: number, alpha: number): Rollback | null {
  const side = (rate: number): SideSpec => ({ errorRate: rate, concentration: 100 + 200 * random.uniform(), medianLatency: 0.1, sigma: 0.5 });
  const stable = side(stableRate);
  const canary = side(stableRate + delta);
  const baseline = simulateBaseline(random, stable, rps);
  const judge = createErrorRateJudge(
    { margin: 0.03, cap: null, alpha, beta: 0.05, minRequests: 20, plannedSteps: 3, plannedChecks: 40, stepChecks: STEP_CHECKS },
    { dispersion: dispersionFromBaseline(baseline.moments) },
  );
  return rollbackUnderStepRules((step, weight) => judge.observe({ step, canary: simWindow(random, canary, rps * weight), stable: simWindow(random, stable, rps * (1 - weight)) }));
}

function latencyRollout(random: Random, rps: number, factor: number, tau: number, onset = 0): Rollback | null {
  const stable: SideSpec = { errorRate: 0.01, concentration: 200, medianLatency: 0.1, sigma: 0.5 };
  const baseline = simulateBaseline(random, stable, rps);
  const judge = createLatencyJudge({ ratio: 1.5, limit: 2, alpha: 0.005, beta: 0.05, minRequests: 20, plannedSteps: 3, plannedChecks: 40, stepChecks: STEP_CHECKS, baseline: baseline.buckets });
  let index = 0;
  const scrape = (r: number, median: number) => simWindow(random, { ...stable, medianLatency: median * Math.exp(tau * random.normal()) }, r, 1);
  return rollbackUnderStepRules((step, weight) => {
    const median = 0.1 * (index++ >= onset ? factor : 1);
    return judge.observe({
      step,
      canary: { buckets: addSides(scrape(rps * weight, median), scrape(rps * weight, median)).buckets },
      stable: { buckets: simWindow(random, stable, rps * (1 - weight)).buckets },
    });
  });
}

const quantileOf = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;

const [mode, ...rest] = process.argv.slice(2);
const args = rest.map(Number);
if (mode !== 'errors' && mode !== 'latency' && mode !== 'latency-checks') {
  console.error(
    'usage: wander-validity-sim.js errors RUNS SEED STABLE DELTA ALPHA RPS_LOW RPS_HIGH | latency RUNS SEED FACTOR TAU RPS_LOW RPS_HIGH | latency-checks RUNS SEED FACTOR TAU RPS_LOW RPS_HIGH [ONSET]',
  );
  process.exit(2);
}
const [runs = 1000, seed = 1] = args;
const random = createRandom(seed);
const [low, high] = mode === 'errors' ? [args[5] ?? 10, args[6] ?? 200] : [args[4] ?? 10, args[5] ?? 200];
const backs: Rollback[] = [];
for (let i = 0; i < runs; i++) {
  const rps = low * (high / low) ** random.uniform();
  const back = mode === 'errors' ? errorRollout(random, rps, args[2] ?? 0, args[3] ?? 0.015, args[4] ?? 0.005) : latencyRollout(random, rps, args[2] ?? 1.47, args[3] ?? 0.1, mode === 'latency-checks' ? (args[6] ?? 0) : 0);
  if (back) backs.push(back);
}
const rollbacks = backs.length;
if (mode === 'latency-checks') {
  const onset = args[6] ?? 0;
  const early = backs.filter((b) => b.checks <= onset).length;
  const checks = backs
    .filter((b) => b.checks > onset)
    .map((b) => b.checks - onset)
    .sort((a, b) => a - b);
  const mean = checks.reduce((a, b) => a + b, 0) / Math.max(1, checks.length);
  console.log(
    `latency-checks ${rest.slice(2).join(' ')} at ${low}–${high} req/s: checks to rollback after onset median ${quantileOf(checks, 0.5)} p90 ${quantileOf(checks, 0.9)} mean ${mean.toFixed(2)}; rolled back before onset ${early}, never ${runs - rollbacks} of ${runs}`,
  );
} else {
  console.log(`${mode} ${rest.slice(2).join(' ')} at ${low}–${high} req/s: rolled back ${rollbacks} of ${runs} (${((100 * rollbacks) / runs).toFixed(2)}%)`);
  const where = new Map<string, number>();
  for (const b of backs) where.set(`step ${b.step + 1} check ${b.check}`, (where.get(`step ${b.step + 1} check ${b.check}`) ?? 0) + 1);
  if (where.size > 0) console.log(`  where: ${[...where.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join(', ')}`);
}
