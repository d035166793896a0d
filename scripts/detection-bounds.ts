// How fast could any valid judge be? The shipped error judge beside two oracles, on the same
// simulated rollouts (the benchmark corpus's noise model, as scripts/detection-sim.ts replays it):
// each side's error rate a Beta around its base rate per 30 s scrape (concentration 100–300),
// stable at 0.1–2%, a +δ regression from an onset at a step start or in the middle of a window.
//
// Both oracles know every parameter: stable's rate, the canary's wander (its Beta concentration),
// the regression's size; they see each 30 s scrape's counts (more than the judge sees), and they
// test the regressed rate against the null's boundary (stable + 1.5 points, with the same wander)
// by the exact likelihood ratio of the beta-binomial, at the judge's own level, Ville's
// 1/(0.9 · 0.5%). A judge must be valid at that boundary too, so no valid judge can beat them in
// the long run (Lorden 1971; Lai, IEEE Trans. Inf. Theory 1998):
//   known onset    – told when the regression starts: one likelihood ratio from the onset's scrape;
//                    the floor for any test of this size, whatever it knows;
//   unknown onset  – the change-point mixture with the shipped judge's own prior weights
//                    (change-point.ts): what a judge that knew everything but the onset would need.
// Usage: node dist/scripts/detection-bounds.js [runs per band] [seed] [delta]

import { createErrorRateJudge } from '../src/analysis/sequential/binomial-sequential.js';
import { changePointWeight } from '../src/analysis/sequential/change-point.js';
import { dispersionFromBaseline } from '../src/analysis/sequential/dispersion.js';
import { binomialLogLik } from '../src/analysis/sequential/composite.js';
import { logSumExp } from '../src/analysis/sequential/evidence.js';
import { createRandom, type Random } from '../src/analysis/sequential/random.js';
import { DEFAULT_SCHEDULE, simulateBaseline, simWindow, type SideSpec, type SimSide } from '../test/support/realistic-traffic.js';

const ONSETS = [0, 7.5, 15, 20, 25, 32.5];
const BANDS = [
  { label: '1–10 rps', low: 1, high: 10 },
  { label: '10–50 rps', low: 10, high: 50 },
  { label: '≥50 rps', low: 50, high: 200 },
];
const ALPHA = 0.005;
const THRESHOLD = Math.log(1 / (0.9 * ALPHA));
const MARGIN_NULL = 0.015;
const MAX_WINDOWS = 80;

/** log Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error about 1e-15). */
const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (LANCZOS[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}
const logBeta = (x: number, y: number) => logGamma(x) + logGamma(y) - logGamma(x + y);

/** log P(k of n | rate ~ Beta(p·c, (1−p)·c)) without the binomial coefficient (it cancels in a ratio). */
function betaBinomialLog(k: number, n: number, p: number, c: number): number {
  const a = p * c;
  const b = (1 - p) * c;
  return logBeta(k + a, n - k + b) - logBeta(a, b);
}

interface Scrape {
  regressed: boolean;
  side: SimSide;
}
interface Window {
  halves: Scrape[];
  canary: SimSide;
  stable: SimSide;
}
interface Rollout {
  rps: number;
  base: number;
  delta: number;
  concentration: number;
  onsetMinutes: number;
  seed: number;
  stable: SideSpec;
}

/** The data of window `index` at step `step`: the same for every procedure that gets there. */
function windowAt(r: Rollout, index: number, step: number): Window {
  const random = createRandom(r.seed * 4099 + index * 31 + step);
  const weight = (DEFAULT_SCHEDULE[Math.min(step, DEFAULT_SCHEDULE.length - 1)] as (typeof DEFAULT_SCHEDULE)[number]).weight;
  const canary: SideSpec = { errorRate: r.base, concentration: r.concentration, medianLatency: 0.1, sigma: 0.5 };
  const halves = [0, 0.5].map((h) => {
    const regressed = index + h >= r.onsetMinutes;
    return { regressed, side: simWindow(random, regressed ? { ...canary, errorRate: r.base + r.delta } : canary, rps(r, weight), 1) };
  });
  const [a, b] = halves as [Scrape, Scrape];
  return {
    halves,
    canary: { requests: a.side.requests + b.side.requests, errors: a.side.errors + b.side.errors, buckets: [] },
    stable: simWindow(random, r.stable, r.rps * (1 - weight)),
  };
}
const rps = (r: Rollout, weight: number) => r.rps * weight;

/** Index of the first window holding regressed traffic (checks are counted from it, as 1). */
const firstRegressed = (r: Rollout) => Math.floor(r.onsetMinutes);

function shippedJudge(r: Rollout, baselineRandom: Random): number | null {
  const judge = createErrorRateJudge(
    { margin: 0.03, cap: 0.05, alpha: ALPHA, beta: 0.05, minRequests: 20, plannedSteps: 3, plannedChecks: 40, stepChecks: DEFAULT_SCHEDULE.map((s) => s.checks) },
    { dispersion: dispersionFromBaseline(simulateBaseline(baselineRandom, r.stable, r.rps).moments) },
  );
  let index = 0;
  for (let step = 0; step < DEFAULT_SCHEDULE.length; step++) {
    const checks = (DEFAULT_SCHEDULE[step] as (typeof DEFAULT_SCHEDULE)[number]).checks;
    for (let c = 0; ; c++) {
      const w = windowAt(r, index, step);
      index++;
      const e = judge.observe({ step, canary: w.canary, stable: w.stable });
      if (e.decision === 'fail') return index - firstRegressed(r);
      if (c + 1 >= checks) {
        if (!e.adverse) break;
        if (c + 1 >= 2 * checks) return index - firstRegressed(r);
      }
    }
  }
  return null;
}

/** The planned path (15, 10, 15 windows), then the last step's weight until MAX_WINDOWS. */
function plannedStep(index: number): { step: number; stepStart: number | null } {
  let start = 0;
  for (let step = 0; step < DEFAULT_SCHEDULE.length; step++) {
    const checks = (DEFAULT_SCHEDULE[step] as (typeof DEFAULT_SCHEDULE)[number]).checks;
    if (index < start + checks || step === DEFAULT_SCHEDULE.length - 1) return { step, stepStart: index === start ? step : null };
    start += checks;
  }
  return { step: DEFAULT_SCHEDULE.length - 1, stepStart: null };
}

function scrapeLog(r: Rollout, s: Scrape): number {
  const n = s.side.requests;
  const k = s.side.errors;
  return betaBinomialLog(k, n, r.base + r.delta, r.concentration) - betaBinomialLog(k, n, r.base + MARGIN_NULL, r.concentration);
}

/** The judge's own likelihood: the window's totals, binomial on counts deflated by 1 + ρ·n at the true ρ. */
function deflatedLog(r: Rollout, w: Window): number {
  const rho = 1 / (2 * (r.concentration + 1));
  const phi = 1 + rho * w.canary.requests;
  const [x, n] = [w.canary.errors / phi, w.canary.requests / phi];
  return binomialLogLik(x, n, r.base + r.delta) - binomialLogLik(x, n, r.base + MARGIN_NULL);
}

function knownOnsetDeflated(r: Rollout): number | null {
  let sum = 0;
  for (let index = firstRegressed(r); index < MAX_WINDOWS; index++) {
    const w = windowAt(r, index, plannedStep(index).step);
    sum += deflatedLog(r, w);
    if (sum >= THRESHOLD) return index + 1 - firstRegressed(r);
  }
  return null;
}

function knownOnsetOracle(r: Rollout): number | null {
  let sum = 0;
  for (let index = firstRegressed(r); index < MAX_WINDOWS; index++) {
    const w = windowAt(r, index, plannedStep(index).step);
    for (const h of w.halves) if (h.regressed) sum += scrapeLog(r, h);
    if (sum >= THRESHOLD) return index + 1 - firstRegressed(r);
  }
  return null;
}

function unknownOnsetOracle(r: Rollout): number | null {
  const spans: Array<{ logWeight: number; sum: number }> = [];
  for (let index = 0; index < MAX_WINDOWS; index++) {
    const { step, stepStart } = plannedStep(index);
    spans.push({ logWeight: Math.log(changePointWeight(index, stepStart, DEFAULT_SCHEDULE.length, 40)), sum: 0 });
    const w = windowAt(r, index, step);
    const inc = w.halves.reduce((a, h) => a + scrapeLog(r, h), 0);
    for (const sp of spans) sp.sum += inc;
    if (logSumExp(spans.map((sp) => sp.logWeight + sp.sum)) >= THRESHOLD && index >= firstRegressed(r)) return index + 1 - firstRegressed(r);
    if (logSumExp(spans.map((sp) => sp.logWeight + sp.sum)) >= THRESHOLD) return -1;
  }
  return null;
}

const runs = Number(process.argv[2] ?? 400);
const seed = Number(process.argv[3] ?? 1);
const delta = Number(process.argv[4] ?? 0.05);
const random = createRandom(seed);
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))] as number) : NaN;
};
const summary = (xs: Array<number | null>) => {
  const hit = xs.filter((x): x is number => x !== null && x > 0);
  const early = xs.filter((x) => x !== null && x <= 0).length;
  const mean = hit.reduce((a, b) => a + b, 0) / Math.max(1, hit.length);
  return `median ${quantile(hit, 0.5)} p90 ${quantile(hit, 0.9)} mean ${mean.toFixed(2)} missed ${xs.filter((x) => x === null).length}${early ? ` before onset ${early}` : ''}`;
};

console.log(`+${(delta * 100).toFixed(1)} points over stable 0.1–2%, onsets ${ONSETS.join(', ')} min; level ${ALPHA} (Ville threshold ${THRESHOLD.toFixed(2)} nats); ${runs} rollouts per band, seed ${seed}`);
for (const band of BANDS) {
  const results: Record<string, Record<'start' | 'mid' | 'all', Array<number | null>>> = {};
  const record = (name: string, kind: 'start' | 'mid', v: number | null) => {
    results[name] ??= { start: [], mid: [], all: [] };
    results[name][kind].push(v);
    results[name].all.push(v);
  };
  for (let i = 0; i < runs; i++) {
    const onsetMinutes = ONSETS[i % ONSETS.length] as number;
    const base = 0.001 * 20 ** random.uniform();
    const r: Rollout = {
      rps: band.low * (band.high / band.low) ** random.uniform(),
      base,
      delta,
      concentration: 100 + 200 * random.uniform(),
      onsetMinutes,
      seed: seed * 1_000_003 + i,
      stable: { errorRate: base, concentration: 100 + 200 * random.uniform(), medianLatency: 0.1, sigma: 0.5 },
    };
    const kind = Number.isInteger(onsetMinutes) && [0, 15, 25].includes(onsetMinutes) ? 'start' : 'mid';
    record('judge (shipped)', kind, shippedJudge(r, createRandom(r.seed + 7)));
    record('oracle, onset unknown', kind, unknownOnsetOracle(r));
    record('oracle, onset known', kind, knownOnsetOracle(r));
    record('known, deflated totals', kind, knownOnsetDeflated(r));
  }
  for (const [name, byKind] of Object.entries(results)) {
    console.log(`${band.label.padEnd(10)} ${name.padEnd(22)} all: ${summary(byKind.all)}`);
    console.log(`${''.padEnd(10)} ${''.padEnd(22)} step-start onsets: ${summary(byKind.start)}; mid-step: ${summary(byKind.mid)}`);
  }
}
