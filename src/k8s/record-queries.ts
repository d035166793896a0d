// The PromQL of a metric is the same text at every check (the time is a parameter, not part of
// it), and it is most of a check's size: stored once per rollout record, not once per check.
// The stored record carries a table `queryTexts` at its end, and each check result names its
// queries by position in it (`queryRefs`), so a person reading the ConfigMap with kubectl finds
// every query once, in full; the record in memory always has `queries` inline.

import type { CheckRecord, CheckResult } from '../analysis/types.js';
import type { RolloutRecord } from '../rollout/record.js';

/** A check result as stored: its queries as positions in the record's `queryTexts`. */
export type StoredCheckResult = Omit<CheckResult, 'queries'> & { queryRefs: number[] };
export type StoredCheck = Omit<CheckRecord, 'results'> & { results: StoredCheckResult[] };
export type TabulatedRecord = Omit<RolloutRecord, 'checks'> & { checks: StoredCheck[]; queryTexts: string[] };

/** The record with each distinct query text once, in `queryTexts`; one pass, the input untouched. */
export function tabulateQueries(record: RolloutRecord): TabulatedRecord {
  const positions = new Map<string, number>();
  const queryTexts: string[] = [];
  const refOf = (text: string): number => {
    let at = positions.get(text);
    if (at === undefined) {
      at = queryTexts.push(text) - 1;
      positions.set(text, at);
    }
    return at;
  };
  const checks = record.checks.map((check) => ({
    ...check,
    results: check.results.map((result) => {
      // The refs stand where `queries` stood, so a stored result reads in the same order.
      const stored: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(result)) {
        if (key === 'queries') stored['queryRefs'] = result.queries.map(refOf);
        else stored[key] = value;
      }
      return stored as StoredCheckResult;
    }),
  }));
  return { ...record, checks, queryTexts };
}

/**
 * The record in memory from what was stored: query positions back to their text. A record
 * written before the table existed (queries inline, or dropped as repeats) is returned as it is.
 */
export function inflateQueries(parsed: RolloutRecord | TabulatedRecord): RolloutRecord {
  if (!('queryTexts' in parsed) || !Array.isArray(parsed.queryTexts)) return parsed as RolloutRecord;
  const { queryTexts, checks } = parsed;
  // A malformed record stays as it is, for the reader that validates it to say what is wrong.
  if (!Array.isArray(checks)) return parsed as unknown as RolloutRecord;
  const textAt = (i: number): string => queryTexts[i] ?? `(query ${i} missing from the record's queryTexts)`;
  const inline = (result: StoredCheckResult | CheckResult): CheckResult => {
    if (!('queryRefs' in result)) return result;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(result)) {
      if (key === 'queryRefs') out['queries'] = Array.isArray(value) ? (value as number[]).map(textAt) : [];
      else out[key] = value;
    }
    return out as unknown as CheckResult;
  };
  // Field by field, so the record reads back in the order it was written (checks in their place).
  const record: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (key === 'queryTexts') continue;
    record[key] =
      key === 'checks'
        ? checks.map((check) => ({ ...check, results: (Array.isArray(check.results) ? check.results : []).map((r) => inline(r as StoredCheckResult | CheckResult)) }))
        : value;
  }
  return record as unknown as RolloutRecord;
}
