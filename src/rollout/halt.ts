// How a rollout ends early (Halt: result, reason, exit code, whose stop it is) and the words
// its outcomes are phrased in.

import type { CheckResult } from '../analysis/types.js';
import type { ExitCode } from '../errors.js';
import { type CheckCounts, type OutcomeResult } from './record.js';

/** Ends the rollout early; the message is the reason recorded and shown to operators. */
export class Halt extends Error {
  constructor(
    readonly result: Exclude<OutcomeResult, 'promoted'>,
    message: string,
    readonly exitCode: ExitCode,
    /** Set when someone else already rolled back: traffic is theirs to move, but we still make sure it is 0. */
    readonly byOperator = false,
    /** Set when another deploy took the rollout over: traffic, record and canary are theirs now. */
    readonly takenOver = false,
  ) {
    super(message);
  }
}

/** Why analysis ended the rollout, phrased from the results that decided it. */
export function failureReason(results: readonly CheckResult[]): string {
  const failing = results.filter((r) => r.critical && r.verdict === 'fail');
  return failing.map((r) => `${r.metric}: ${r.reason}`).join('; ');
}

export function inconclusiveReason(results: readonly CheckResult[], run: number): string {
  const why = [...new Set(results.filter((r) => r.critical && r.verdict === 'inconclusive').map((r) => r.reason))];
  return `${run} checks in a row were inconclusive (${why.join('; ')}); a canary that cannot be judged is not promoted`;
}

/** "all 40 checks passed", or each verdict counted as what it was. */
export function promotionReason(counts: CheckCounts): string {
  if (counts.passed === counts.run) return `all ${counts.run} checks passed`;
  const parts = [`${counts.passed} passed`];
  if (counts.pending) parts.push(`${counts.pending} still gathering evidence`);
  if (counts.inconclusive) parts.push(`${counts.inconclusive} inconclusive`);
  const other = counts.run - counts.passed - counts.pending - counts.inconclusive - counts.failed;
  if (counts.failed) parts.push(`${counts.failed} failed`);
  if (other > 0) parts.push(`${other} advisory only`);
  return `no regression found in ${counts.run} checks (${parts.join(', ')})`;
}
