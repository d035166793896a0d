// The canary's wander as each possible onset sees it (issue 15, item 6).
//
// Where stable shows too few errors to speak for the canary's wander, the canary's own windows
// must (binomial-sequential.ts). One estimate over all of them counts a regression's onset — a
// jump of the canary's rate — as wander: at a 6% rate, one successive difference of 5 points is
// worth about seventeen windows of a typical wander, so the estimate, and with it every window's
// deflation, grew threefold just when the evidence was needed (scripts/detection-bounds.ts: 1.5
// checks of detection at 10–50 req/s). A span tests "the regression began at window k", and under
// that hypothesis the canary is stationary before k and stationary from k on. So a span's ρ comes
// from the successive differences before k (the rollout's estimator as it stood at k) and those
// within the span (each normalized by the span's own rate, not by one pooled over both sides of
// the jump), leaving out only the difference that straddles k. Which difference is left out is
// fixed by the span, never chosen by the data: under the null, with no change at all, it is the
// same moment estimate less one term. The mixture still leans on the span that starts at a burst,
// whose own difference is the one left out, so the spread allowance is 2 standard errors, not 1.5
// (binomial-sequential.ts). Trimming the largest difference instead (chosen by the data) rolled
// back 0.97% of canaries at a zero-error stable's boundary against a 0.5% alpha.

import { rhoFromMoments, wanderContribution, type WanderMoments } from './dispersion.js';

/** Figures a span keeps for its own wander estimate: Σ contributions, their count, Σ squares. */
export const WANDER_SLOTS = 3;

export interface WanderAllowance {
  allowance: number;
  spreadAllowance: number;
}

interface SpanView {
  windows: number;
  sums: readonly number[];
}

/**
 * ρ for the span's next window. `at` is where its wander figures start in its sums; `before` the
 * rollout estimator's moments before this window; `whole` its ρ, for a span saved without the figures.
 */
export function spanWanderRho(span: SpanView, at: number, before: WanderMoments, a: WanderAllowance, whole: () => number): number {
  if (span.windows === 0) return rhoFromMoments(before, a.allowance, a.spreadAllowance);
  const count = span.sums[at + 1] ?? 0;
  if (!(count > 0)) return whole();
  const moments = { sum: span.sums[at] ?? 0, count, sumSq: span.sums[at + 2] ?? 0, seen: count };
  return rhoFromMoments(moments, a.allowance, a.spreadAllowance);
}

/**
 * What this window adds to the span's wander figures: at its first window, the differences before
 * it; then each difference within it. `spanCanary` is the span's canary counts before this window,
 * `last` the previous canary window with requests (the rollout estimator's).
 */
export function spanWanderIncrement(
  span: SpanView,
  spanCanary: { events: number; requests: number },
  now: { events: number; requests: number },
  last: { rate: number; requests: number } | null,
  before: WanderMoments,
): [number, number, number] {
  if (span.windows === 0) return [before.sum, before.count, before.sumSq];
  // The previous window with canary requests is inside the span only if the span has seen any.
  if (!(now.requests > 0) || !(spanCanary.requests > 0) || !last) return [0, 0, 0];
  const p = (spanCanary.events + now.events + 0.5) / (spanCanary.requests + now.requests + 1);
  const c = wanderContribution({ rate: Math.min(1, Math.max(0, now.events / now.requests)), requests: now.requests }, last, p);
  return [c, 1, c * c];
}
