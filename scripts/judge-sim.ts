// A quick in-process simulation of the default policy's sequential judges under the engine's
// step rule, on test/support/realistic-traffic.ts's noise (per-side Beta wander of the error rate
// from scrape to scrape, lognormal latency in ingress-nginx's buckets). For tuning between runs of
// the real-Prometheus benchmark (`npm run bench:judge`). Usage: node dist/scripts/judge-sim.js [runs]

import { createErrorRateJudge } from '../src/analysis/sequential/binomial-sequential.js';
import { dispersionFromBaseline } from '../src/analysis/sequential/dispersion.js';
import { createLatencyJudge } from '../src/analysis/sequential/latency-sequential.js';
import { createRandom, type Random } from '../src/analysis/sequential/random.js';
import { DEFAULT_SCHEDULE, simulateBaseline, simWindow, type SideSpec } from '../test/support/realistic-traffic.js';

interface Kind {
  name: string;
  error?: number;
  latency?: number;
  slowStable?: boolean;
  expect: 'promote' | 'rollback' | 'either';
}

const KINDS: Kind[] = [
  { name: 'equal', expect: 'promote' },
  { name: '+1 pt', error: 0.01, expect: 'promote' },
  { name: '+3 pt', error: 0.03, expect: 'either' },
  { name: '+5 pt', error: 0.05, expect: 'rollback' },
  { name: '+10 pt', error: 0.1, expect: 'rollback' },
  { name: '1.3x', latency: 1.3, expect: 'promote' },
  { name: '2x', latency: 2, expect: 'rollback' },
  { name: '3x', latency: 3, expect: 'rollback' },
  { name: 'slow stable (P95 3 s)', slowStable: true, expect: 'rollback' },
];
const RPS = [0.5, 2, 10, 50, 200];
const ONSETS = [0, 5, 15, 20, 25];

function side(random: Random, errorRate: number, median: number): SideSpec {
  return { errorRate, concentration: 100 + 200 * random.uniform(), medianLatency: median, sigma: 0.5 };
}

interface Result {
  rolledBack: boolean;
  checksAfterOnset: number | null;
  advancedAboveCap: boolean;
}

function run(random: Random, kind: Kind, rps: number, onset: number): Result {
  const base = [0.005, 0.01, 0.02][random.int(3)] as number;
  const median = kind.slowStable ? 3 / Math.exp(1.645 * 0.5) : 0.05 + 0.15 * random.uniform();
  const stable = side(random, base, median);
  const canary = side(random, base, median);
  const regressed: SideSpec = {
    ...canary,
    errorRate: base + (kind.error ?? 0),
    medianLatency: median * (kind.latency ?? 1),
  };
  const baseline = simulateBaseline(random, stable, rps);
  const errors = createErrorRateJudge({ margin: 0.03, cap: 0.05, alpha: 0.005, beta: 0.05, minRequests: 20 }, { dispersion: dispersionFromBaseline(baseline.moments) });
  const latency = createLatencyJudge({ ratio: 1.5, limit: 2, alpha: 0.005, beta: 0.05, minRequests: 20, baseline: baseline.buckets });
  let index = 0;
  let advancedAboveCap = false;
  for (let step = 0; step < DEFAULT_SCHEDULE.length; step++) {
    const s = DEFAULT_SCHEDULE[step] as (typeof DEFAULT_SCHEDULE)[number];
    for (let c = 0; ; c++) {
      const isRegressed = (kind.error !== undefined || kind.latency !== undefined) && index >= onset;
      const w = {
        step,
        canary: simWindow(random, isRegressed ? regressed : canary, rps * s.weight),
        stable: simWindow(random, stable, rps * (1 - s.weight)),
      };
      index++;
      const e = errors.observe({ step, canary: w.canary, stable: w.stable });
      const l = latency.observe({ step, canary: { buckets: w.canary.buckets }, stable: { buckets: w.stable.buckets } });
      if (e.decision === 'fail' || l.decision === 'fail') return { rolledBack: true, checksAfterOnset: index - onset, advancedAboveCap };
      if (c + 1 >= s.checks) {
        const adverse = e.adverse ?? l.adverse;
        if (!adverse) {
          if ((e.canaryRate > 0.05 && e.canaryRequests >= 20) || l.canaryQuantile > 2) advancedAboveCap = true;
          break;
        }
        if (c + 1 >= 2 * s.checks) return { rolledBack: true, checksAfterOnset: index - onset, advancedAboveCap };
      }
    }
  }
  return { rolledBack: false, checksAfterOnset: null, advancedAboveCap };
}

const runs = Number(process.argv[2] ?? 40);
const random = createRandom(Number(process.argv[3] ?? 7));
const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor(q * s.length))] as number) : NaN;
};
console.log('kind                      rps   rolled back   median/p90 checks after onset   stepped above cap');
const only = process.argv[4];
for (const kind of KINDS.filter((k) => !only || only.split(',').includes(k.name))) {
  for (const rps of RPS) {
    let back = 0;
    let total = 0;
    let above = 0;
    const delays: number[] = [];
    for (let i = 0; i < runs; i++) {
      const onset = kind.error !== undefined || kind.latency !== undefined ? (ONSETS[i % ONSETS.length] as number) : 0;
      const r = run(random, kind, rps, onset);
      total++;
      if (r.rolledBack) {
        back++;
        if (r.checksAfterOnset !== null) delays.push(r.checksAfterOnset);
      }
      if (r.advancedAboveCap) above++;
    }
    console.log(
      `${kind.name.padEnd(24)} ${String(rps).padStart(5)}   ${pct(back, total).padStart(10)}   ${String(quantile(delays, 0.5)).padStart(6)}/${String(quantile(delays, 0.9)).padEnd(6)}                    ${above}`,
    );
  }
}
