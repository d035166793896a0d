// npm run bench:judge:sim — runs the sequential, fixed-threshold and Mann-Whitney judges on the same
// seeded corpus of simulated rollouts and prints, per judge and traffic band, the false-rollback
// rate on healthy canaries and the detection rate and speed per regression, then checks the goals
// of the issue. Regressions start either at a step's first check or mid-step (its 6th check), and
// are reported apart. Options: --seed N, --healthy N (healthy rollouts per band), --per N (rollouts
// per regression size, onset and band).

import { BANDS, HOLD_CHECKS, MID_STEP_CHECK, ONSETS_IN_STEP, REGRESSIONS, SCHEDULE, buildCorpus, simulateRollout, type CheckWindow, type Scenario } from './corpus.js';
import { JUDGES, type BenchJudge, type RunningJudge } from './judges.js';

interface Outcome {
  /** Checks seen (1-based) when the judge rolled back, or null when it did not. */
  rollbackAt: number | null;
  /** Checks seen before the regression's first window (its onset is check onsetAt + 1). */
  onsetAt: number | null;
  /** The rollout ended because a held step never passed: stopped for lack of evidence. */
  undecided: boolean;
}

/**
 * One rollout as the engine runs it with the sequential judge: a step advances on time unless its
 * last check saw no canary traffic at all (inconclusive), in which case it is held for up to
 * HOLD_CHECKS more checks; a check without canary traffic five times in a row ends the rollout
 * "undecided" (the engine's inconclusiveLimit). Flagger- and Kayenta-like judges count windows
 * without data themselves (as failures or skipped), so for them every step advances on time.
 */
function runRollout(running: RunningJudge, windows: readonly CheckWindow[], scenario: Scenario, holds: boolean): Outcome {
  let seen = 0;
  let onsetAt: number | null = null;
  let idleRun = 0;
  for (let step = 0; step < SCHEDULE.length; step++) {
    let lastIdle = false;
    for (const w of windows.filter((x) => x.step === step)) {
      if (w.held && !(holds && lastIdle)) break;
      if (onsetAt === null && w.regressed) onsetAt = seen;
      seen++;
      if (running.rollsBack(w)) return { rollbackAt: seen, onsetAt, undecided: false };
      lastIdle = w.canary.requests <= 0;
      idleRun = lastIdle ? idleRun + 1 : 0;
      if (holds && idleRun >= HOLD_CHECKS) return { rollbackAt: null, onsetAt, undecided: true };
    }
    if (holds && lastIdle) return { rollbackAt: null, onsetAt, undecided: true };
  }
  return { rollbackAt: null, onsetAt, undecided: false };
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
    (outcomes[j] as Outcome[])[scenario.id] = runRollout(judge.start(scenario), windows, scenario, judge.holdsWithoutTraffic === true);
  });
}
const elapsed = (Date.now() - started) / 1000;

interface Detection {
  n: number;
  detected: number;
  early: number;
  checks: number[];
}

function falseRollbacks(j: number, filter: (s: Scenario) => boolean): { n: number; rolledBack: number; undecided: number } {
  let n = 0;
  let rolledBack = 0;
  let undecided = 0;
  for (const s of scenarios) {
    if (s.regression !== null || !filter(s)) continue;
    n++;
    const o = (outcomes[j] as Outcome[])[s.id];
    if (o?.rollbackAt !== null) rolledBack++;
    if (o?.undecided) undecided++;
  }
  return { n, rolledBack, undecided };
}

function detection(j: number, filter: (s: Scenario) => boolean): Detection {
  const d: Detection = { n: 0, detected: 0, early: 0, checks: [] };
  for (const s of scenarios) {
    if (s.regression === null || !filter(s)) continue;
    d.n++;
    const o = (outcomes[j] as Outcome[])[s.id];
    const at = o?.rollbackAt ?? null;
    if (at === null) continue;
    if (o?.onsetAt === null || o?.onsetAt === undefined || at <= o.onsetAt) {
      d.early++;
      continue;
    }
    d.detected++;
    d.checks.push(at - o.onsetAt);
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

const midStep = (s: Scenario) => (s.regression?.onsetCheckInStep ?? 0) > 0;
const stepStart = (s: Scenario) => s.regression !== null && !midStep(s);
const ordinalCheck = `${MID_STEP_CHECK + 1}th`;
const regressedPerBand = REGRESSIONS.length * SCHEDULE.length * ONSETS_IN_STEP.length * size.perRegressionPerOnsetPerBand;

print(`Judge benchmark — seed ${seed}: ${scenarios.length} simulated rollouts of 10% 15m → 25% 10m → 50% 15m, one check a minute`);
print(
  `(${size.healthyPerBand} healthy and ${regressedPerBand} regressed per traffic band; each regression starts in step 1, 2 or 3, at its first check or mid-step at its ${ordinalCheck} check, ${size.perRegressionPerOnsetPerBand} each)`,
);
print('Detection cells: detected% median/p90 checks from onset to rollback (a rollback before onset counts as missed).');
print('Steps advance as the engine advances them with (a): on time, unless the last check saw no canary traffic (held; five');
print('such checks in a row end the rollout "undecided", reported apart from rollbacks). (b) and (c) advance on time.');
print('');

const LABEL = 22;
for (let j = 0; j < JUDGES.length; j++) {
  const judge = JUDGES[j] as BenchJudge;
  print(judge.name);
  print(pad('', LABEL) + bandFilters.map((b) => pad(b.name, COLUMN)).join(''));
  print(
    pad('false rollbacks', LABEL) +
      bandFilters
        .map((b) => {
          const f = falseRollbacks(j, b.filter);
          return pad(`${pct(f.rolledBack, f.n)} (${f.rolledBack}/${f.n})`, COLUMN);
        })
        .join(''),
  );
  if (judge.holdsWithoutTraffic) {
    print(
      pad('undecided', LABEL) +
        bandFilters
          .map((b) => {
            const f = falseRollbacks(j, b.filter);
            return pad(`${pct(f.undecided, f.n)} (${f.undecided}/${f.n})`, COLUMN);
          })
          .join(''),
    );
  }
  for (const [title, onset] of [
    ["starting at a step's 1st check", stepStart],
    [`starting mid-step (${ordinalCheck} check)`, midStep],
  ] as const) {
    print(`  ${title}:`);
    for (const r of REGRESSIONS) {
      print(
        pad(`  ${r.label}`, LABEL) +
          bandFilters
            .map((b) => pad(detectionCell(detection(j, (s) => b.filter(s) && onset(s) && s.regression?.label === r.label)), COLUMN))
            .join(''),
      );
    }
  }
  const onset1 = (label: string) =>
    detection(j, (s) => s.band === 2 && stepStart(s) && s.regression?.label === label && s.regression.onsetStep === 0);
  const mid10 = detection(j, (s) => s.band === 2 && midStep(s) && s.regression?.label === '+10 pt errors');
  print(`  ≥50 rps, onset at the 10% step: +3 pt ${detectionCell(onset1('+3 pt errors'))} · 2× ${detectionCell(onset1('2× latency'))}`);
  print(`  ≥50 rps, +10 pt starting mid-step: ${detectionCell(mid10)} (median checks from onset to rollback: ${quantile(mid10.checks, 0.5)})`);
  print('');
}

// Goals from the issue, and the mid-step one.
const summary = JUDGES.map((_, j) => {
  const f = falseRollbacks(j, () => true);
  const all = detection(j, () => true);
  const atMargin = detection(j, (s) => s.regression !== null && ['+3 pt errors', '+10 pt errors', '2× latency', '3× latency'].includes(s.regression.label));
  const mid = detection(j, midStep);
  return { falseRate: f.rolledBack / f.n, f, all, atMargin, mid };
});
const a = summary[0] as (typeof summary)[number];
const goal1 = a.falseRate <= 0.01;
const fast = (label: string) => {
  const d = detection(0, (s) => s.band === 2 && stepStart(s) && s.regression?.label === label && s.regression.onsetStep === 0);
  return { d, ok: d.detected / d.n >= 0.95 && quantile(d.checks, 0.5) <= 2 };
};
const three = fast('+3 pt errors');
const double = fast('2× latency');
const midTen = detection(0, (s) => s.band === 2 && midStep(s) && s.regression?.label === '+10 pt errors');
const midTenOk = midTen.detected / midTen.n >= 0.95 && quantile(midTen.checks, 0.5) <= 1;
const others = summary.slice(1);
const aheadFalse = others.every((o) => a.falseRate <= o.falseRate);
const aheadDetect = others.every((o) => a.all.detected / a.all.n >= o.all.detected / o.all.n);
const aheadDetectMargin = others.every((o) => a.atMargin.detected / a.atMargin.n >= o.atMargin.detected / o.atMargin.n);
const aheadMid = others.every((o) => a.mid.detected / a.mid.n >= o.mid.detected / o.mid.n);

print('Summary over all bands and onsets (false rollbacks · detection of all regressions · at or above the margin: +3/+10 pt, 2×/3× · all mid-step)');
summary.forEach((s, j) => {
  print(
    `  ${pad((JUDGES[j] as BenchJudge).name, 34)} ${pad(pct(s.f.rolledBack, s.f.n), 8)} ${pad(detectionCell(s.all), 18)} ${pad(detectionCell(s.atMargin), 18)} ${detectionCell(s.mid)}`,
  );
});
print('');
const mark = (ok: boolean) => (ok ? 'MET    ' : 'NOT MET');
print('Goals');
print(`  ${mark(goal1)} ≤ 1% false rollbacks over all healthy canaries: ${pct(a.f.rolledBack, a.f.n)} (${a.f.rolledBack}/${a.f.n})`);
print(`  ${mark(three.ok)} ≥50 rps, +3 pt from the 10% step: ≥95% caught, median ≤ 2 checks: ${detectionCell(three.d)}`);
print(`  ${mark(double.ok)} ≥50 rps, 2× latency from the 10% step: ≥95% caught, median ≤ 2 checks: ${detectionCell(double.d)}`);
print(`  ${mark(aheadFalse && aheadDetect)} (a) ahead of (b) and (c) on both axes: fewer false rollbacks ${aheadFalse ? 'yes' : 'no'}, higher detection ${aheadDetect ? 'yes' : 'no'} (at or above the margin: ${aheadDetectMargin ? 'yes' : 'no'}; mid-step: ${aheadMid ? 'yes' : 'no'})`);
print(
  `  ${mark(midTenOk)} ≥50 rps, +10 pt starting mid-step: median checks from onset to rollback ${quantile(midTen.checks, 0.5)} (goal 1), caught ${pct(midTen.detected, midTen.n)}: ${detectionCell(midTen)}`,
);
print('');
print(`${scenarios.length} rollouts × ${JUDGES.length} judges in ${elapsed.toFixed(1)} s`);

process.stdout.write(`${lines.join('\n')}\n`);
