import type { Policy } from '../../../src/policy/policy.js';
import type { BacktestRun } from './backtest-runner.js';
import { alphaSplit } from '../../../src/analysis/sequential/hold.js';
import { changePointOracleChecks } from './oracle-limit.js';
import { canaryShareAt, KINDS, PROMOTED_AT_MIN, ROLLOUT_START_MS, SCRAPE_MS, STEPS, type Kind, type RolloutSpec, trueP95 } from './spec.js';

// Scores each backtest against what its rollout was generated to be, and checks the issue's
// targets. Only the command's own output is read: exit code, outcome, and the record's checks.

export type Ending = 'promoted' | 'rolled back: breach' | 'rolled back: inconclusive' | 'rolled back: held' | 'exit 2' | 'other';

export interface Scored {
  spec: RolloutSpec;
  run: BacktestRun;
  ending: Ending;
  correct: boolean;
  /** Checks from the regression's onset to the rollback (the first check whose window holds it is 1). */
  checksAfterOnset: number | null;
  /** Rolled back before its regression began: a false rollback too. */
  rolledBackBeforeOnset: boolean;
  /** Weight raised right after a check whose canary estimate was above a critical cap. */
  advancedAboveCap: number;
  /** Step advances the record still held checks around (the record may be bounded). */
  advancesInspected: number;
  /** Caps that could not be checked at an advance: no estimate in the cap's unit before it. */
  capsUnseen: number;
  /** The information limit: checks a fixed-sample test at the policy's alpha and beta needs after the onset (binomial counts). */
  limitChecks: number | null;
  /** The same with the rate's wander from scrape to scrape that the generator puts in (see informationLimit). */
  limitChecksOverdispersed: number | null;
  /** Median checks of a sequential judge that knows every parameter but the onset (oracle-limit.ts). */
  limitChecksOracle: number | null;
  /** Steps wholly after the onset that ended (advanced, or the last one promoted), and how many of them on a pass of the error-rate judge. */
  stepsAfterOnset: number;
  stepsPassedOnProof: number;
}

const MINUTE_MS = 60_000;

// Standard normal CDF and quantile, this benchmark's own (Abramowitz & Stegun 26.2.17 / 26.2.23).
function phi(z: number): number {
  const t = 1 / (1 + 0.2316419 * Math.abs(z));
  const d = 0.3989423 * Math.exp((-z * z) / 2);
  const p = d * t * (0.3193815 + t * (-0.3565638 + t * (1.781478 + t * (-1.821256 + t * 1.330274))));
  return z > 0 ? 1 - p : p;
}
function zOf(tail: number): number {
  const t = Math.sqrt(-2 * Math.log(tail));
  return t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
}

/** Scrape-to-scrape wander of the log-median latency: generate.ts's LATENCY_WANDER (kept out of its import so the blocks' cache hash stays). */
const LATENCY_WANDER = 0.03;

/**
 * The fewest checks after the onset a one-sided fixed-sample test of the canary's share (errors,
 * or requests slower than the line) needs at the policy's per-metric alpha and its beta, at the
 * onset step's canary traffic: k = ((z_α·σ0 + z_β·σ1) / (p1 − p0))² windows, σ² a window's
 * variance, counted in checks as the judge's detection is (an onset inside a window gives the first
 * check only part of a window).
 *
 * - binomial: σ² = p(1−p)/n, stable's rate known. It ignores the rate's wander from minute to
 *   minute, so no judge valid under that wander can reach it: a lower bound.
 * - overdispersed: σ² adds the wander the generator draws (each side's error rate from a Beta of
 *   concentration c every 30 s scrape, so a window of d scrapes wanders by p(1−p)/(d·(c+1)); the
 *   latency's log-median by LATENCY_WANDER per scrape), on the canary's side and, for the error
 *   difference, on stable's (a judge compares with stable over the same windows). Still a fixed
 *   sample with every parameter known: a lower bound for a judge that must learn them.
 */
function informationLimit(spec: RolloutSpec, policy: Policy): { binomial: number; overdispersed: number; oracle: number | null } | null {
  if (!spec.onset || spec.dead5xx || spec.deadNoTraffic) return null;
  const judged = policy.analysis.metrics.filter((m) => m.critical && m.judge === 'sequential').length;
  const alpha = policy.analysis.sequential.alpha / Math.max(1, judged);
  const [za, zb] = [zOf(alpha), zOf(policy.analysis.sequential.beta)];
  const intervalMs = policy.intervalMs;
  const scrapes = Math.max(1, Math.round(intervalMs / SCRAPE_MS));
  const perCheck = spec.rps * canaryShareAt(spec.onset.ms + 1) * (intervalMs / 1000);
  const stablePerCheck = spec.rps * (1 - canaryShareAt(spec.onset.ms + 1)) * (intervalMs / 1000);
  if (!(perCheck > 0)) return null;
  let p0: number;
  let p1: number;
  /** The canary's share before the onset. */
  let before: number;
  /** A window's variance of the canary's share at p, beyond the binomial's. */
  let wander: (p: number) => number;
  if (spec.errorDelta > 0) {
    const rate = policy.analysis.metrics.find((m) => m.type === 'error-rate');
    const margin = rate && rate.type === 'error-rate' ? (rate.maxIncrease ?? 0.03) : 0.03;
    const cap = rate && rate.type === 'error-rate' ? (rate.max ?? 1) : 1;
    p1 = spec.canary.errorRate + spec.errorDelta;
    // The nearer of the two nulls the canary breaks: stable + half the margin, or the cap.
    const byCap = p1 > cap && cap < spec.stable.errorRate + margin / 2;
    p0 = byCap ? cap : spec.stable.errorRate + margin / 2;
    before = spec.canary.errorRate;
    const ps = spec.stable.errorRate;
    const stableVar = byCap || !(stablePerCheck > 0) ? 0 : (ps * (1 - ps)) / stablePerCheck + (ps * (1 - ps)) / (scrapes * (spec.stable.concentration + 1));
    wander = (p) => (p * (1 - p)) / (scrapes * (spec.canary.concentration + 1)) + stableVar;
  } else if (spec.latencyFactor > 1) {
    const line = 1.5 * trueP95(spec.stable);
    const z1 = (Math.log(line) - (spec.canary.mu + Math.log(spec.latencyFactor))) / spec.canary.sigma;
    p0 = 0.05;
    p1 = 1 - phi(z1);
    before = 1 - phi((Math.log(line) - spec.canary.mu) / spec.canary.sigma);
    // d share / d log-median = the normal density at the line's z over σ (delta method).
    const density = (z: number) => Math.exp((-z * z) / 2) / Math.sqrt(2 * Math.PI) / spec.canary.sigma;
    wander = (p) => (density(p === p0 ? zOf(p0) : z1) * LATENCY_WANDER) ** 2 / scrapes;
  } else return null;
  if (!(p1 > p0)) return null;
  // Checks are counted from the first whose window holds regressed traffic; an onset in the middle
  // of a window gives that window only its share f of it, so k windows' worth take 1 + ⌈k − f⌉ checks.
  const into = (((spec.onset.ms - ROLLOUT_START_MS) % intervalMs) + intervalMs) % intervalMs;
  const first = into === 0 ? 1 : 1 - into / intervalMs;
  const checks = (v0: number, v1: number) => {
    const k = ((za * Math.sqrt(v0) + zb * Math.sqrt(v1)) / (p1 - p0)) ** 2;
    return k <= first ? 1 : 1 + Math.ceil(k - first - 1e-9);
  };
  const binomialVar = (p: number) => (p * (1 - p)) / perCheck;
  const planned = Math.round((PROMOTED_AT_MIN * MINUTE_MS) / intervalMs);
  const last = (STEPS.at(-1)?.weight ?? 100) / 100;
  const onsetWindow = Math.floor((spec.onset.ms - ROLLOUT_START_MS) / intervalMs);
  const oracle = changePointOracleChecks({
    // The planned checks, then the last step held as long again as its plan.
    windows: planned + Math.round(((STEPS.at(-1)?.endMin ?? 0) - (STEPS.at(-1)?.startMin ?? 0)) * (MINUTE_MS / intervalMs)),
    requests: (i) => spec.rps * (i < planned ? canaryShareAt(ROLLOUT_START_MS + i * intervalMs + 1) : last) * (intervalMs / 1000),
    stepStart: (i) => {
      const k = STEPS.findIndex((s) => Math.round((s.startMin * MINUTE_MS) / intervalMs) === i);
      return k < 0 ? null : k;
    },
    plannedSteps: STEPS.length,
    plannedChecks: planned,
    onsetWindow,
    onsetShare: first,
    before,
    after: p1,
    boundary: p0,
    variance: (p, n) => (p * (1 - p)) / n + wander(p),
    level: alphaSplit(alpha, STEPS.length).breach,
    seed: spec.seed,
    draws: 201,
  });
  return {
    binomial: checks(binomialVar(p0), binomialVar(p1)),
    overdispersed: checks(binomialVar(p0) + wander(p0), binomialVar(p1) + wander(p1)),
    oracle,
  };
}

function endingOf(run: BacktestRun): Ending {
  if (run.code === 0) return 'promoted';
  if (run.code === 2) return 'exit 2';
  if (run.code !== 3) return 'other';
  const last = run.record?.checks.at(-1)?.verdict;
  if (last === 'fail') return 'rolled back: breach';
  if (last === 'inconclusive') return 'rolled back: inconclusive';
  return 'rolled back: held';
}

interface Cap {
  max: number;
  /** The unit a result's canary value must be in to be compared with the cap. */
  unit: 'ratio' | 'seconds';
}

function caps(policy: Policy): Map<string, Cap> {
  const out = new Map<string, Cap>();
  for (const m of policy.analysis.metrics) {
    if (!m.critical || m.max === undefined) continue;
    if (m.type === 'error-rate') out.set(m.name, { max: m.max, unit: 'ratio' });
    if (m.type === 'latency') out.set(m.name, { max: m.max, unit: 'seconds' });
  }
  return out;
}

export function score(spec: RolloutSpec, run: BacktestRun, policy: Policy): Scored {
  const ending = endingOf(run);
  const rolledBack = run.code === 3;
  const correct =
    spec.expected === 'promote' ? run.code === 0 : spec.expected === 'rollback' ? rolledBack : spec.expected === 'either' ? run.code === 0 || rolledBack : run.code === 2;
  const intervalMs = run.record?.policy.intervalMs ?? MINUTE_MS;
  const lastAt = run.record?.checks.at(-1)?.at;
  let checksAfterOnset: number | null = null;
  let rolledBackBeforeOnset = false;
  if (rolledBack && spec.onset && lastAt) {
    const after = Date.parse(lastAt) - spec.onset.ms;
    if (after <= 0) rolledBackBeforeOnset = true;
    else checksAfterOnset = Math.ceil(after / intervalMs);
  }
  const limit = informationLimit(spec, policy);
  const limitChecks = limit?.binomial ?? null;
  const limitChecksOverdispersed = limit?.overdispersed ?? null;
  const limitChecksOracle = limit?.oracle ?? null;
  const limits = caps(policy);
  const checks = [...(run.record?.checks ?? [])].sort((a, b) => a.index - b.index);
  let advancedAboveCap = 0;
  let advancesInspected = 0;
  let capsUnseen = 0;
  for (let i = 1; i < checks.length; i++) {
    const before = checks[i - 1];
    const after = checks[i];
    if (!before || !after || after.weight <= before.weight || after.index !== before.index + 1) continue;
    advancesInspected++;
    let above = false;
    for (const [metric, cap] of limits) {
      // A judge may report a metric as something other than its capped estimate (the sequential
      // latency judge reports the share of slow requests): then this cap cannot be checked here.
      const result = before.results.find((r) => r.metric === metric && r.unit === cap.unit);
      if (!result) capsUnseen++;
      else if (result.canary !== null && result.canary > cap.max) above = true;
    }
    if (above) advancedAboveCap++;
  }
  // Steps at the alternative: each step whose every window came after the onset, ended by an
  // advance (or by the promotion), and whether the error-rate judge passed it on proof (what beta
  // bounds) or it advanced without proof when its time was up.
  const rateMetric = policy.analysis.metrics.find((m) => m.type === 'error-rate')?.name;
  let stepsAfterOnset = 0;
  let stepsPassedOnProof = 0;
  if (spec.onset && rateMetric) {
    let stepStartMs: number | null = null;
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i];
      const prev = checks[i - 1];
      const next = checks[i + 1];
      if (!c) continue;
      if (!prev || prev.weight !== c.weight || prev.index !== c.index - 1) stepStartMs = Date.parse(c.at) - intervalMs;
      const ends = next ? next.weight > c.weight && next.index === c.index + 1 : run.code === 0;
      if (!ends || stepStartMs === null || stepStartMs < spec.onset.ms) continue;
      stepsAfterOnset++;
      if (c.results.find((r) => r.metric === rateMetric)?.verdict === 'pass') stepsPassedOnProof++;
    }
  }
  return { spec, run, ending, correct, checksAfterOnset, rolledBackBeforeOnset, advancedAboveCap, advancesInspected, capsUnseen, limitChecks, limitChecksOverdispersed, limitChecksOracle, stepsAfterOnset, stepsPassedOnProof };
}

// ---------------------------------------------------------------------------------------------

function quantile(values: readonly number[], q: number): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? null;
}

const pct = (k: number, n: number) => (n ? `${((100 * k) / n).toFixed(1)}%` : '—');
const pad = (s: string | number, w: number) => String(s).padEnd(w);
const lpad = (s: string | number, w: number) => String(s).padStart(w);

export interface Target {
  pass: boolean;
  line: string;
}

/** True when the canary's P95 is above 2 s once it regressed (by generation, not estimate). */
function canaryAboveTwoSeconds(spec: RolloutSpec): boolean {
  return !spec.dead5xx && !spec.deadNoTraffic && trueP95(spec.canary, spec.latencyFactor) > 2;
}

export function report(policyLabel: string, scored: readonly Scored[], seconds: number): { lines: string[]; targets: Target[] } {
  const lines: string[] = [];
  lines.push(`${policyLabel}: ${scored.length} backtests in ${seconds.toFixed(0)} s`);
  lines.push(
    `  ${pad('kind', 26)}${pad('rps', 6)}${lpad('n', 4)}${lpad('right', 8)}${lpad('promoted', 10)}${lpad('rb:breach', 11)}${lpad('rb:inconcl', 12)}${lpad('rb:held', 10)}${lpad('exit 2', 8)}${lpad('other', 7)}   checks to detect (median / p90; information limit, median)`,
  );
  for (const kind of KINDS) {
    for (const band of ['high', 'low'] as const) {
      const rows = scored.filter((s) => s.spec.kind === kind && s.spec.band === band);
      if (!rows.length) continue;
      const count = (e: Scored['ending']) => rows.filter((r) => r.ending === e).length;
      const detect = rows.map((r) => r.checksAfterOnset).filter((c): c is number => c !== null);
      const early = rows.filter((r) => r.rolledBackBeforeOnset).length;
      const limit = rows.map((r) => r.limitChecks).filter((c): c is number => c !== null);
      const limitWords = limit.length ? `; limit ${quantile(limit, 0.5)}` : '';
      const detection = detect.length ? `${quantile(detect, 0.5)} / ${quantile(detect, 0.9)}  (n=${detect.length}${early ? `, ${early} before onset` : ''}${limitWords})` : early ? `${early} before onset` : '';
      lines.push(
        `  ${pad(kind, 26)}${pad(band === 'high' ? '≥10' : '<10', 6)}${lpad(rows.length, 4)}${lpad(pct(rows.filter((r) => r.correct).length, rows.length), 8)}${lpad(count('promoted'), 10)}${lpad(count('rolled back: breach'), 11)}${lpad(count('rolled back: inconclusive'), 12)}${lpad(count('rolled back: held'), 10)}${lpad(count('exit 2'), 8)}${lpad(count('other'), 7)}   ${detection}`,
      );
    }
  }
  const withOutcome = scored.filter((s) => s.spec.expected !== 'either');
  const right = withOutcome.filter((s) => s.correct).length;
  const falseRollbacks = scored.filter((s) => (s.spec.expected === 'promote' && s.run.code === 3) || s.rolledBackBeforeOnset);
  const falseByBreach = falseRollbacks.filter((s) => s.ending === 'rolled back: breach');
  const misses = scored.filter((s) => s.spec.expected === 'rollback' && s.run.code !== 3);
  lines.push(`  right: ${right}/${withOutcome.length} (${pct(right, withOutcome.length)}; "+3pt" left out: either outcome is right)`);
  const named = (list: readonly Scored[], what: (s: Scored) => string) =>
    list.length ? `: ${list.slice(0, 12).map((s) => `${s.spec.id} ${s.spec.kind}${s.spec.band === 'low' ? ' <10rps' : ''}${what(s)}`).join(', ')}${list.length > 12 ? `, and ${list.length - 12} more (--json FILE lists them all)` : ''}` : '';
  lines.push(
    `  false rollbacks: ${falseRollbacks.length} (${falseByBreach.length} on a breach, ${falseRollbacks.length - falseByBreach.length} for lack of evidence; ${falseRollbacks.filter((s) => s.rolledBackBeforeOnset).length} of them regressions rolled back before their onset)${named(falseRollbacks, (s) => (s.rolledBackBeforeOnset ? ' (before onset)' : ''))}`,
  );
  lines.push(`  misses (regression not rolled back): ${misses.length}${named(misses, (s) => ` (${s.ending})`)}`);
  const plus3 = scored.filter((s) => s.spec.kind === 'error +3pt');
  if (plus3.length) lines.push(`  +3pt (at the margin, report only): ${plus3.filter((s) => s.run.code === 0).length} promoted, ${plus3.filter((s) => s.run.code === 3).length} rolled back of ${plus3.length}`);
  const unexpected = scored.filter((s) => s.ending === 'other');
  for (const s of unexpected.slice(0, 5)) lines.push(`  ! ${s.spec.id} (${s.spec.kind}) exited ${s.run.code}: ${s.run.stderr.trim().split('\n')[0] ?? ''}`);

  // Issue 15, item 6: detection per traffic band against the information limit (binomial, and
  // with the wander the generator draws), and item 2: beta at the alternative it is defined at.
  const bands = [
    { label: '<10 rps', test: (r: number) => r < 10 },
    { label: '10–50 rps', test: (r: number) => r >= 10 && r < 50 },
    { label: '≥50 rps', test: (r: number) => r >= 50 },
  ];
  lines.push('  detection against the information limit (checks from onset to rollback, median / p90; limit: medians of the fewest checks a');
  lines.push('  fixed-sample test at the policy\'s alpha per metric and beta needs — binomial, and with the error rate\'s and latency\'s wander');
  lines.push('  from scrape to scrape that the corpus draws; the judge must allow for that wander, so the second is the fair one; and the');
  lines.push('  median checks of a sequential judge that knows every parameter but the onset, at the judge\'s alpha and onset prior):');
  for (const kind of ['error +5pt', 'error +10pt', 'latency 2x', 'latency 3x'] as const) {
    for (const band of bands) {
      const rows = scored.filter((s) => s.spec.kind === kind && band.test(s.spec.rps));
      if (!rows.length) continue;
      const detect = rows.map((r) => r.checksAfterOnset).filter((c): c is number => c !== null);
      const lim = rows.map((r) => r.limitChecks).filter((c): c is number => c !== null);
      const od = rows.map((r) => r.limitChecksOverdispersed).filter((c): c is number => c !== null);
      const or = rows.map((r) => r.limitChecksOracle).filter((c): c is number => c !== null);
      const [m, l, o, q] = [quantile(detect, 0.5), quantile(lim, 0.5), quantile(od, 0.5), quantile(or, 0.5)];
      const ratio = (a: number | null, b: number | null) => (a !== null && b ? `${(a / b).toFixed(1)}×` : '—');
      lines.push(
        `    ${pad(kind, 13)}${pad(band.label, 11)}${lpad(`n=${rows.length}`, 5)}  detected ${detect.length}, ${m ?? '—'} / ${quantile(detect, 0.9) ?? '—'}   limit binomial ${l ?? '—'} (${ratio(m, l)}), overdispersed ${o ?? '—'} (${ratio(m, o)}), oracle (onset unknown) ${q ?? '—'} (${ratio(m, q)})`,
      );
    }
  }
  const atAlternative = scored.filter((s) => s.spec.kind === 'error +3pt');
  if (atAlternative.length) {
    lines.push(`  beta at its alternative (canary +3 points, the margin itself; beta = the chance of passing a step there on proof):`);
    for (const band of bands) {
      const rows = atAlternative.filter((s) => band.test(s.spec.rps));
      if (!rows.length) continue;
      const steps = rows.reduce((a, s) => a + s.stepsAfterOnset, 0);
      const proof = rows.reduce((a, s) => a + s.stepsPassedOnProof, 0);
      const promoted = rows.filter((s) => s.run.code === 0).length;
      lines.push(
        `    ${pad(band.label, 11)}steps passed on proof ${proof} of ${steps} wholly after the onset (${pct(proof, steps)}); rollouts promoted (missed) ${promoted} of ${rows.length} (${pct(promoted, rows.length)}; a step may also advance without proof when its time is up)`,
      );
    }
  }

  // The issue's targets.
  const targets: Target[] = [];
  const target = (pass: boolean, line: string) => targets.push({ pass, line });
  const high = (kinds: readonly Kind[]) => scored.filter((s) => kinds.includes(s.spec.kind) && s.spec.band === 'high');
  const equalHigh = high(['equal']);
  const promotedEqual = equalHigh.filter((s) => s.run.code === 0).length;
  target(equalHigh.length > 0 && promotedEqual >= 0.99 * equalHigh.length, `≥ 99% of equal canaries promoted at ≥ 10 rps: ${promotedEqual}/${equalHigh.length} (${pct(promotedEqual, equalHigh.length)})`);
  const equalLow = scored.filter((s) => s.spec.kind === 'equal' && s.spec.band === 'low');
  const lowBreach = equalLow.filter((s) => s.ending === 'rolled back: breach').length;
  target(lowBreach === 0, `no equal canary below 10 rps rolled back by a breach: ${lowBreach} of ${equalLow.length} (${equalLow.filter((s) => s.run.code === 3).length - lowBreach} rolled back for lack of evidence)`);
  const big: Kind[] = ['error +5pt', 'error +10pt', 'latency 2x', 'latency 3x'];
  const bigAll = scored.filter((s) => big.includes(s.spec.kind));
  const bigRolled = bigAll.filter((s) => s.run.code === 3).length;
  target(bigRolled === bigAll.length, `every +5/+10-point and 2×/3× regression rolled back: ${bigRolled}/${bigAll.length}`);
  const bigDetect = high(big).map((s) => s.checksAfterOnset).filter((c): c is number => c !== null);
  const median = quantile(bigDetect, 0.5);
  target(median !== null && median <= 2, `…median ≤ 2 checks after onset at ≥ 10 rps: median ${median ?? '—'}, p90 ${quantile(bigDetect, 0.9) ?? '—'} (n=${bigDetect.length})`);
  // Issue 15's target 6, per band: ≥ 50 rps median ≤ 2 checks for +5 points and 2× latency; at
  // 10–50 rps within 1.5× of the information limit (the overdispersed one, the fair one; binomial shown).
  for (const kind of ['error +5pt', 'latency 2x'] as const) {
    const fastRows = scored.filter((s) => s.spec.kind === kind && s.spec.rps >= 50);
    const fast = fastRows.map((s) => s.checksAfterOnset).filter((c): c is number => c !== null);
    const m = quantile(fast, 0.5);
    const fastOracle = quantile(fastRows.map((s) => s.limitChecksOracle).filter((c): c is number => c !== null), 0.5);
    target(m !== null && m <= 2, `${kind} at ≥ 50 rps rolled back in a median of ≤ 2 checks after onset: ${m ?? '—'} (n=${fast.length}; a judge knowing every parameter but the onset: ${fastOracle ?? '—'})`);
    const mid = scored.filter((s) => s.spec.kind === kind && s.spec.rps >= 10 && s.spec.rps < 50);
    const md = quantile(mid.map((s) => s.checksAfterOnset).filter((c): c is number => c !== null), 0.5);
    const od = quantile(mid.map((s) => s.limitChecksOverdispersed).filter((c): c is number => c !== null), 0.5);
    const bin = quantile(mid.map((s) => s.limitChecks).filter((c): c is number => c !== null), 0.5);
    const midOracle = quantile(mid.map((s) => s.limitChecksOracle).filter((c): c is number => c !== null), 0.5);
    target(md !== null && od !== null && md <= 1.5 * od, `${kind} at 10–50 rps within 1.5× of the overdispersed information limit: median ${md ?? '—'} against ${od ?? '—'} (binomial limit ${bin ?? '—'}; a judge knowing every parameter but the onset: ${midOracle ?? '—'}; n=${mid.length})`);
  }
  const advances = scored.reduce((a, s) => a + s.advancesInspected, 0);
  const unseen = scored.reduce((a, s) => a + s.capsUnseen, 0);
  const aboveCap = scored.filter((s) => s.advancedAboveCap > 0);
  target(aboveCap.length === 0 && unseen === 0, `no step advanced while the canary's estimate was above a cap: ${aboveCap.length} rollouts did (${advances} advances inspected${unseen ? `; ${unseen} times a capped metric had no estimate in the cap's unit before the advance` : ''})${aboveCap.length ? `: ${aboveCap.slice(0, 8).map((s) => `${s.spec.id} ${s.spec.kind}`).join(', ')}` : ''}`);
  const slow = scored.filter((s) => canaryAboveTwoSeconds(s.spec));
  const slowRolled = slow.filter((s) => s.run.code === 3).length;
  target(slow.length > 0 && slowRolled === slow.length, `every canary with P95 above 2 s rolled back: ${slowRolled}/${slow.length}`);
  for (const kind of ['error +1pt', 'latency 1.3x'] as const) {
    const rows = high([kind]);
    const promoted = rows.filter((s) => s.run.code === 0).length;
    target(rows.length > 0 && promoted >= 0.95 * rows.length, `≥ 95% of ${kind} canaries promoted at ≥ 10 rps: ${promoted}/${rows.length} (${pct(promoted, rows.length)})`);
  }
  // Issue 15's edges: no rollback of a canary well inside the policy, no regression promoted.
  const inside: Kind[] = ['zero stable +0.5pt', 'zero stable +1pt', 'bucket 1.3x', 'P95 1.8s (cap 2s)', 'pod replaced', 'shared burst', 'bimodal latency'];
  const insideRows = high(inside);
  const insideRolled = insideRows.filter((s) => s.run.code === 3);
  target(insideRolled.length === 0, `no edge canary well inside the policy rolled back at ≥ 10 rps: ${insideRolled.length} of ${insideRows.length}${insideRolled.length ? `: ${insideRolled.slice(0, 8).map((s) => `${s.spec.id} ${s.spec.kind}`).join(', ')}` : ''}`);
  const edgeRegressions = scored.filter((s) => ['zero stable +4pt', 'bucket 2x', 'P95 2.3s (cap 2s)', 'stable over cap', 'cap: 4% -> 6%', 'slow ramp +5pt'].includes(s.spec.kind));
  const edgeMissed = edgeRegressions.filter((s) => s.run.code !== 3);
  target(edgeMissed.length === 0, `every edge regression rolled back: ${edgeRegressions.length - edgeMissed.length}/${edgeRegressions.length}${edgeMissed.length ? `: ${edgeMissed.slice(0, 8).map((s) => `${s.spec.id} ${s.spec.kind}`).join(', ')}` : ''}`);
  const noData = scored.filter((s) => s.spec.kind === 'no data');
  const exit2 = noData.filter((s) => s.run.code === 2).length;
  target(exit2 === noData.length, `no-data runs end with exit 2: ${exit2}/${noData.length}${noData.filter((s) => s.run.code !== 2).map((s) => ` (${s.spec.backtest.why}: exit ${s.run.code})`).join('')}`);
  lines.push('  targets:');
  for (const t of targets) lines.push(`    ${t.pass ? 'PASS' : 'FAIL'}  ${t.line}`);
  return { lines, targets };
}
