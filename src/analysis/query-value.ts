import type { QueryResult } from './types.js';

export type SingleValue =
  | { ok: true; value: number }
  | { ok: false; why: 'empty' | 'nan' | 'many'; detail: string };

/**
 * The one number a check query must produce. Empty, NaN and many-series answers are kept apart
 * because each means something different to the operator (no traffic vs. a broken query), and
 * none of them may ever count as a pass.
 */
export function singleValue(result: QueryResult): SingleValue {
  if (result.samples.length === 0) return { ok: false, why: 'empty', detail: 'Prometheus returned no data' };
  if (result.samples.length > 1) {
    return {
      ok: false,
      why: 'many',
      detail: `the query returned ${result.samples.length} series where one was expected (wrap it in sum(...))`,
    };
  }
  const value = result.samples[0]?.value ?? Number.NaN;
  if (Number.isNaN(value)) return { ok: false, why: 'nan', detail: 'Prometheus returned NaN (no requests in the window)' };
  return { ok: true, value };
}
