// Two-sample Mann-Whitney U test with tie correction and the normal approximation (with
// continuity correction), as Kayenta's judge runs it on the canary's and control's per-interval
// metric values.

import { standardNormalCdf } from '../../src/analysis/sequential/evidence.js';

export interface MannWhitneyResult {
  /** Two-sided p-value. */
  p: number;
  /**
   * U minus its mean under no difference: positive when canary values tend to be higher (the
   * sign of the Hodges–Lehmann shift, without sorting all n1·n2 pairwise differences).
   */
  direction: number;
}

export function mannWhitney(canary: readonly number[], control: readonly number[]): MannWhitneyResult {
  const n1 = canary.length;
  const n2 = control.length;
  if (n1 === 0 || n2 === 0) return { p: 1, direction: 0 };
  const all = [...canary.map((v) => ({ v, c: true })), ...control.map((v) => ({ v, c: false }))].sort((a, b) => a.v - b.v);
  let rankSumCanary = 0;
  let tieTerm = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && (all[j + 1] as { v: number }).v === (all[i] as { v: number }).v) j++;
    const rank = (i + j + 2) / 2;
    const size = j - i + 1;
    tieTerm += size * size * size - size;
    for (let k = i; k <= j; k++) if ((all[k] as { c: boolean }).c) rankSumCanary += rank;
    i = j + 1;
  }
  const u = rankSumCanary - (n1 * (n1 + 1)) / 2;
  const n = n1 + n2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (!(variance > 0)) return { p: 1, direction: u - mean };
  const z = (Math.abs(u - mean) - 0.5) / Math.sqrt(variance);
  return { p: Math.min(1, 2 * (1 - standardNormalCdf(Math.max(0, z)))), direction: u - mean };
}
