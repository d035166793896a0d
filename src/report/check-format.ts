import { formatValue } from '../analysis/format-value.js';
import type { CheckRecord, CheckResult } from '../analysis/types.js';

// Text shared by every human-facing report: one line per check, a table per result.

export function summarizeMetric(results: readonly CheckResult[]): string {
  const first = results[0];
  if (!first) return '';
  // A sequential latency check judges shares of slow requests; the P95s are what people read.
  const p = first.evidence;
  if (p && typeof p['canaryP'] === 'number') {
    const stableP = typeof p['stableP'] === 'number' ? ` vs ${formatValue(p['stableP'], 'seconds')}` : '';
    return `${first.metric} ${formatValue(p['canaryP'], 'seconds')}${stableP}`;
  }
  const canary = formatValue(first.canary, first.unit);
  const stable = first.stable === null ? '' : ` vs ${formatValue(first.stable, first.unit)}`;
  return `${first.metric} ${canary}${stable}`;
}

/** "error-rate 0.41% vs 0.52% · p95-latency 180ms vs 175ms · memory 120 MiB vs 118 MiB" */
export function checkSummary(check: CheckRecord): string {
  const byMetric = new Map<string, CheckResult[]>();
  for (const r of check.results) byMetric.set(r.metric, [...(byMetric.get(r.metric) ?? []), r]);
  return [...byMetric.values()].map(summarizeMetric).join(' · ');
}

export interface TableRow {
  metric: string;
  check: string;
  canary: string;
  stable: string;
  threshold: string;
  verdict: string;
}

export function resultRows(results: readonly CheckResult[]): TableRow[] {
  return results.map((r) => ({
    metric: r.metric,
    check: r.check,
    canary: formatValue(r.canary, r.unit),
    stable: formatValue(r.stable, r.unit),
    threshold: r.threshold === null ? '-' : formatValue(r.threshold, r.unit),
    verdict: r.critical || r.verdict === 'info' ? r.verdict : `${r.verdict} (advisory)`,
  }));
}

const HEADERS: TableRow = { metric: 'METRIC', check: 'CHECK', canary: 'CANARY', stable: 'STABLE', threshold: 'LIMIT', verdict: 'VERDICT' };

/** Fixed-width table; `paint` colours the verdict column after padding so widths stay right. */
export function renderTable(rows: readonly TableRow[], paint: (verdict: string, text: string) => string = (_, t) => t): string[] {
  const all = [HEADERS, ...rows];
  const keys = Object.keys(HEADERS) as (keyof TableRow)[];
  const widths = keys.map((k) => Math.max(...all.map((row) => row[k].length)));
  return all.map((row, i) =>
    keys
      .map((k, j) => {
        const cell = row[k].padEnd(widths[j] ?? 0);
        return i > 0 && k === 'verdict' ? paint(row.verdict, cell) : cell;
      })
      .join('  ')
      .trimEnd(),
  );
}
