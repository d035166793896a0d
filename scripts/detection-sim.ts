// Checks from onset to rollback for +5-point error-rate regressions, in-process, on the
// benchmark corpus's noise model (test/support/realistic-traffic.ts: per-side Beta wander of the
// error rate per 30 s scrape, concentration 100–300; stable 0.1–2%; onsets at step starts and in
// the middle of a window, 7.5 and 32.5 minutes in), with the default policy's judge settings
// (alpha 1% split over two critical metrics, three steps of 15, 10 and 15 checks). Also the false
// rollback rate of canaries at the null's boundary (stable + 1.5 points). For tuning the error
// judge's speed between runs of the real-Prometheus benchmark.
// Usage: node dist/scripts/detection-sim.js [runs per band] [seed] [null runs]

import { createErrorRateJudge } from '../src/analysis/sequential/binomial-sequential.js';
import { dispersionFromBaseline } from '../src/analysis/sequential/dispersion.js';
import { createRandom, type Random } from '../src/analysis/sequential/random.js';
import { DEFAULT_SCHEDULE, simulateBaseline, simWindow, type SideSpec, type SimSide } from '../test/support/realistic-traffic.js';

/** Onsets in minutes from the rollout's start, as the corpus places them. */
const ONSETS = [0, 7.5, 15, 20, 25, 32.5];
const BANDS = [
  { label: '10–50 rps', low: 10, high: 50 },
  { label: '≥50 rps', low: 50, high: 200 },
];

function side(random: Random, errorRate: number): SideSpec {
  return { errorRate, concentration: 100 + 200 * random.uniform(), medianLatency: 0.1, sigma: 0.5 };
}

const join = (a: SimSide, b: SimSide): SimSide => ({ requests: a.requests + b.requests, errors: a.errors + b.errors, buckets: [] });

/** Checks from the first window holding regressed traffic to the rollback (null: not rolled back). */
function run(random: Random, rps: number, delta: number, onsetMinutes: number | null, fixedBase?: number): number | null {
  const base = fixedBase ?? 0.001 * 20 ** random.uniform();
  const stable = side(random, base);
  const canary = side(random, base);
  const regressed: SideSpec = { ...canary, errorRate: base + delta };
  const baseline = simulateBaseline(random, stable, rps);
  const judge = createErrorRateJudge(
    { margin: 0.03, cap: 0.05, alpha: 0.005, beta: 0.05, minRequests: 20, plannedSteps: 3, plannedChecks: 40, stepChecks: DEFAULT_SCHEDULE.map((s) => s.checks) },
    { dispersion: dispersionFromBaseline(baseline.moments) },
  );
  let index = 0;
  let first: number | null = null;
  for (let step = 0; step < DEFAULT_SCHEDULE.length; step++) {
    const s = DEFAULT_SCHEDULE[step] as (typeof DEFAULT_SCHEDULE)[number];
    for (let c = 0; ; c++) {
      // Two 30 s scrapes per window; a scrape from the onset on is the regressed canary's.
      const halves = [0, 0.5].map((h) => {
        const regressedNow = onsetMinutes !== null && index + h >= onsetMinutes;
        return { regressedNow, side: simWindow(random, regressedNow ? regressed : canary, rps * s.weight, 1) };
      });
      if (first === null && halves.some((h) => h.regressedNow)) first = index;
      const w = { step, canary: join(halves[0]!.side, halves[1]!.side), stable: simWindow(random, stable, rps * (1 - s.weight)) };
      index++;
      const e = judge.observe(w);
      const after = first === null ? 0 : index - first;
      if (e.decision === 'fail') return after;
      if (c + 1 >= s.checks) {
        if (!e.adverse) break;
        if (c + 1 >= 2 * s.checks) return after;
      }
    }
  }
  return null;
}

const runs = Number(process.argv[2] ?? 60);
const random = createRandom(Number(process.argv[3] ?? 11));
const nullRuns = Number(process.argv[4] ?? 0);
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))] as number) : NaN;
};
/** Regressions: +5 and +10 points over a stable at 0.1–2%, and 6% against a stable at 4% (over the 5% cap). */
const REGRESSIONS = [
  { label: '+5pt', delta: 0.05 },
  { label: '+10pt', delta: 0.1 },
  { label: 'cap 4%→6%', delta: 0.02, base: 0.04 },
];
for (const regression of REGRESSIONS) {
  for (const band of BANDS) {
    const delays: number[] = [];
    let missed = 0;
    for (let i = 0; i < runs; i++) {
      const rps = band.low * (band.high / band.low) ** random.uniform();
      const d = run(random, rps, regression.delta, ONSETS[i % ONSETS.length] as number, regression.base);
      if (d === null) missed++;
      else delays.push(d);
    }
    const mean = delays.reduce((a, b) => a + b, 0) / Math.max(1, delays.length);
    console.log(`${regression.label.padEnd(10)} ${band.label.padEnd(10)} n=${runs} median ${quantile(delays, 0.5)} p90 ${quantile(delays, 0.9)} mean ${mean.toFixed(2)} missed ${missed}`);
  }
}
if (nullRuns > 0) {
  for (const [label, delta] of [['equal', 0], ['boundary +1.5pt', 0.015]] as const) {
    let rolledBack = 0;
    for (let i = 0; i < nullRuns; i++) {
      const rps = 10 * 20 ** random.uniform();
      if (run(random, rps, delta, 0) !== null) rolledBack++;
    }
    console.log(`${label.padEnd(16)} 10–200 rps: rolled back ${rolledBack} of ${nullRuns} (alpha for this metric 0.005)`);
  }
}
