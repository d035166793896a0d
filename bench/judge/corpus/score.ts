import type { Policy } from '../../../src/policy/policy.js';
import type { BacktestRun } from './backtest-runner.js';
import { KINDS, type Kind, type RolloutSpec, trueP95 } from './spec.js';

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
}

const MINUTE_MS = 60_000;

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
  return { spec, run, ending, correct, checksAfterOnset, rolledBackBeforeOnset, advancedAboveCap, advancesInspected, capsUnseen };
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
    `  ${pad('kind', 26)}${pad('rps', 6)}${lpad('n', 4)}${lpad('right', 8)}${lpad('promoted', 10)}${lpad('rb:breach', 11)}${lpad('rb:inconcl', 12)}${lpad('rb:held', 10)}${lpad('exit 2', 8)}${lpad('other', 7)}   checks to detect (median / p90)`,
  );
  for (const kind of KINDS) {
    for (const band of ['high', 'low'] as const) {
      const rows = scored.filter((s) => s.spec.kind === kind && s.spec.band === band);
      if (!rows.length) continue;
      const count = (e: Scored['ending']) => rows.filter((r) => r.ending === e).length;
      const detect = rows.map((r) => r.checksAfterOnset).filter((c): c is number => c !== null);
      const early = rows.filter((r) => r.rolledBackBeforeOnset).length;
      const detection = detect.length ? `${quantile(detect, 0.5)} / ${quantile(detect, 0.9)}  (n=${detect.length}${early ? `, ${early} before onset` : ''})` : early ? `${early} before onset` : '';
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
  const noData = scored.filter((s) => s.spec.kind === 'no data');
  const exit2 = noData.filter((s) => s.run.code === 2).length;
  target(exit2 === noData.length, `no-data runs end with exit 2: ${exit2}/${noData.length}${noData.filter((s) => s.run.code !== 2).map((s) => ` (${s.spec.backtest.why}: exit ${s.run.code})`).join('')}`);
  lines.push('  targets:');
  for (const t of targets) lines.push(`    ${t.pass ? 'PASS' : 'FAIL'}  ${t.line}`);
  return { lines, targets };
}
