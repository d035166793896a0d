// npm run bench:judge — runs the sequential, fixed-threshold and Mann-Whitney judges on the same
// seeded corpus of simulated rollouts and prints, per judge and traffic band, the false-rollback
// rate on healthy canaries and the detection rate and speed per regression, then checks the goals
// of the issue. Options: --seed N, --healthy N (healthy rollouts per band), --per N (rollouts per
// regression size, onset step and band).

import { BANDS, REGRESSIONS, buildCorpus, firstCheckOfStep, simulateRollout, type Scenario } from './corpus.js';
import { JUDGES, type BenchJudge } from './judges.js';

interface Outcome {
  /** Check number (1-based) of the rollback, or null when the rollout was promoted. */
  rollbackAt: number | null;
}

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? Number(process.argv[index + 1]) : Number.NaN;
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback;
}

const seed = option('seed', 20240601);
const size = { healthyPerBand: option('healthy', 1000), perRegressionPerOnsetPerBand: option('per', 40) };
const started = Date.now();
const scenarios = buildCorpus(seed, size);
const outcomes: Outcome[][] = JUDGES.map(() => []);

for (const scenario of scenarios) {
  const windows = simulateRollout(scenario);
  JUDGES.forEach((judge, j) => {
    const running = judge.start(scenario);
    let rollbackAt: number | null = null;
    for (const w of windows) {
      if (running.rollsBack(w)) {
        rollbackAt = w.check;
        break;
      }
    }
    (outcomes[j] as Outcome[])[scenario.id] = { rollbackAt };
  });
}
const elapsed = (Date.now() - started) / 1000;

interface Detection {
  n: number;
  detected: number;
  early: number;
  checks: number[];
}

function falseRollbacks(j: number, filter: (s: Scenario) => boolean): { n: number; rolledBack: number } {
  let n = 0;
  let rolledBack = 0;
  for (const s of scenarios) {
    if (s.regression !== null || !filter(s)) continue;
    n++;
    if ((outcomes[j] as Outcome[])[s.id]?.rollbackAt !== null) rolledBack++;
  }
  return { n, rolledBack };
}

function detection(j: number, filter: (s: Scenario) => boolean): Detection {
  const d: Detection = { n: 0, detected: 0, early: 0, checks: [] };
  for (const s of scenarios) {
    if (s.regression === null || !filter(s)) continue;
    d.n++;
    const at = (outcomes[j] as Outcome[])[s.id]?.rollbackAt ?? null;
    if (at === null) continue;
    const onset = firstCheckOfStep(s.regression.onsetStep);
    if (at < onset) {
      d.early++;
      continue;
    }
    d.detected++;
    d.checks.push(at - onset + 1);
  }
  return d;
}

function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

const pct = (num: number, den: number) => (den === 0 ? 'n/a' : `${((100 * num) / den).toFixed(1)}%`);
const pad = (text: string, width: number) => text.padEnd(width);
const COLUMN = 20;
const bandFilters: Array<{ name: string; filter: (s: Scenario) => boolean }> = [
  ...BANDS.map((b, i) => ({ name: b.name, filter: (s: Scenario) => s.band === i })),
  { name: 'all', filter: () => true },
];

function detectionCell(d: Detection): string {
  if (d.n === 0) return 'n/a';
  const speed = d.checks.length ? ` ${quantile(d.checks, 0.5)}/${quantile(d.checks, 0.9)}` : ' –/–';
  return `${pct(d.detected, d.n)}${speed}`;
}

const lines: string[] = [];
const print = (line = '') => lines.push(line);

print(`Judge benchmark — seed ${seed}: ${scenarios.length} simulated rollouts of 10% 15m → 25% 10m → 50% 15m, one check a minute`);
print(
  `(${size.healthyPerBand} healthy and ${REGRESSIONS.length * 3 * size.perRegressionPerOnsetPerBand} regressed per traffic band; regressions start at the first check of step 1, 2 or 3, ${size.perRegressionPerOnsetPerBand} each)`,
);
print('Detection cells: detected% median/p90 checks from onset to rollback (a rollback before onset counts as missed).');
print('');

for (let j = 0; j < JUDGES.length; j++) {
  const judge = JUDGES[j] as BenchJudge;
  print(judge.name);
  print(pad('', 16) + bandFilters.map((b) => pad(b.name, COLUMN)).join(''));
  print(
    pad('false rollbacks', 16) +
      bandFilters
        .map((b) => {
          const f = falseRollbacks(j, b.filter);
          return pad(`${pct(f.rolledBack, f.n)} (${f.rolledBack}/${f.n})`, COLUMN);
        })
        .join(''),
  );
  for (const r of REGRESSIONS) {
    print(
      pad(r.label, 16) +
        bandFilters.map((b) => pad(detectionCell(detection(j, (s) => b.filter(s) && s.regression?.label === r.label)), COLUMN)).join(''),
    );
  }
  const onset1 = (label: string) => detection(j, (s) => s.band === 2 && s.regression?.label === label && s.regression.onsetStep === 0);
  print(pad('  ≥50 rps, onset at 10%:', 16) + ` +3 pt ${detectionCell(onset1('+3 pt errors'))} · 2× ${detectionCell(onset1('2× latency'))}`);
  print('');
}

// Goals from the issue.
const summary = JUDGES.map((_, j) => {
  const f = falseRollbacks(j, () => true);
  const all = detection(j, () => true);
  const atMargin = detection(j, (s) => s.regression !== null && ['+3 pt errors', '+10 pt errors', '2× latency', '3× latency'].includes(s.regression.label));
  return { falseRate: f.rolledBack / f.n, f, all, atMargin };
});
const a = summary[0] as (typeof summary)[number];
const goal1 = a.falseRate <= 0.01;
const fast = (label: string) => {
  const d = detection(0, (s) => s.band === 2 && s.regression?.label === label && s.regression.onsetStep === 0);
  return { d, ok: d.detected / d.n >= 0.95 && quantile(d.checks, 0.5) <= 2 };
};
const three = fast('+3 pt errors');
const double = fast('2× latency');
const others = summary.slice(1);
const aheadFalse = others.every((o) => a.falseRate <= o.falseRate);
const aheadDetect = others.every((o) => a.all.detected / a.all.n >= o.all.detected / o.all.n);
const aheadDetectMargin = others.every((o) => a.atMargin.detected / a.atMargin.n >= o.atMargin.detected / o.atMargin.n);

print('Summary over all bands (false rollbacks · detection of all regressions · detection at or above the margin: +3/+10 pt, 2×/3×)');
summary.forEach((s, j) => {
  print(
    `  ${pad((JUDGES[j] as BenchJudge).name, 34)} ${pad(pct(s.f.rolledBack, s.f.n), 8)} ${pad(detectionCell(s.all), 18)} ${detectionCell(s.atMargin)}`,
  );
});
print('');
const mark = (ok: boolean) => (ok ? 'MET    ' : 'NOT MET');
print('Goals');
print(`  ${mark(goal1)} ≤ 1% false rollbacks over all healthy canaries: ${pct(a.f.rolledBack, a.f.n)} (${a.f.rolledBack}/${a.f.n})`);
print(`  ${mark(three.ok)} ≥50 rps, +3 pt from the 10% step: ≥95% caught, median ≤ 2 checks: ${detectionCell(three.d)}`);
print(`  ${mark(double.ok)} ≥50 rps, 2× latency from the 10% step: ≥95% caught, median ≤ 2 checks: ${detectionCell(double.d)}`);
print(`  ${mark(aheadFalse && aheadDetect)} (a) ahead of (b) and (c) on both axes: fewer false rollbacks ${aheadFalse ? 'yes' : 'no'}, higher detection ${aheadDetect ? 'yes' : 'no'} (at or above the margin: ${aheadDetectMargin ? 'yes' : 'no'})`);
print('');
print(`${scenarios.length} rollouts × ${JUDGES.length} judges in ${elapsed.toFixed(1)} s`);

process.stdout.write(`${lines.join('\n')}\n`);
