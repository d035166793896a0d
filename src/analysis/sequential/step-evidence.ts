// What a step's own evidence says, for holding it and for saying what blocks it: shared by the
// error-rate and latency judges. A hold is not a rollback; these never roll back on their own.

import { spanLogs, type SpanState } from './change-point.js';
import { logSumExp } from './evidence.js';
import { plural, ratioWords } from './explain.js';

/** At a held step's last check: adverse only on evidence at the hold's share of alpha (hold.ts), else null. */
export function holdEndAdverse(stepLog: number, holdAlpha: number): string | null {
  if (stepLog < Math.log(1 / holdAlpha)) return null;
  return `this step's evidence for a regression is ${ratioWords(Math.exp(stepLog))} at the end of its hold, past the ${ratioWords(1 / holdAlpha)} a held step's rollback needs`;
}

/** Evidence over the current step that holds it: a likelihood ratio of 10:1 for a regression. */
export const LEANING = 10;

/** The step's likelihood ratio for a regression, mixed over the given tests by their weights. */
export function stepLogEvidence(logs: readonly number[], tests: readonly number[], weights: readonly number[] = []): number {
  const terms = tests.map((t) => (logs[t] as number) + (weights.length ? Math.log(weights[t] as number) : 0));
  const total = weights.length ? tests.reduce((a, t) => a + (weights[t] as number), 0) : tests.length;
  return logSumExp(terms) - Math.log(total);
}

/**
 * How far the step's evidence leans towards a regression, for holding it: the likelihood ratio
 * averaged over the step's checks as possible onsets (from each of them to now), not only from the
 * step's start. A regression that began mid-step was diluted by the healthy checks before it: a
 * +5-point canary from the middle of the last step was promoted, its step-start ratio still short
 * of leaning when time was up. Each ratio is a test supermartingale under the null, so their
 * average at any moment has expectation at most 1 and reaches LEANING with probability at most
 * 1/LEANING, as the step-start ratio alone did; an equal canary is held no more often than that.
 */
export function leanLogEvidence(spans: readonly SpanState[], stepSpan: SpanState, tests: readonly number[], weights: readonly number[] = []): number {
  const inStep = spans.filter((sp) => sp.step === stepSpan.step && sp.window >= stepSpan.window);
  if (inStep.length === 0) return stepLogEvidence(spanLogs(stepSpan), tests, weights);
  return logSumExp(inStep.map((sp) => stepLogEvidence(spanLogs(sp), tests, weights))) - Math.log(inStep.length);
}

/**
 * Whether a step's estimate is above its cap, for holding the step: as it stands, once the step has
 * its minimum of canary requests. Holding is not rolling back: a held step advances at the first
 * check whose estimate is back under the cap, so an equal canary that drew three errors in 45
 * requests waits a check or two, while a canary at 16% on 10 requests a minute no longer went from
 * 25% to 50% because 8% over the step was within a standard error of a 5% cap.
 */
export function aboveCap(estimate: number, requests: number, cap: number, minRequests: number): boolean {
  return requests >= minRequests && estimate > cap;
}

/** " (about 3 checks at the current traffic)". */
export function moreChecks(needed: number, lastWindowRequests: number): string {
  if (!(lastWindowRequests > 0) || !(needed > 0)) return '';
  const checks = Math.ceil(needed / lastWindowRequests);
  return checks > 100 ? ' (more than 100 checks at the current traffic)' : ` (about ${plural(checks, 'check')} at the current traffic)`;
}
