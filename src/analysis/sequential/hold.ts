// The held step's rollback counts against alpha too.
//
// A step whose time is up is held while its evidence leans towards a regression (10:1) or its
// estimate is above a cap, and the engine rolls it back when it is still so after another step's
// worth of checks. Leaning 10:1 happens to a canary inside the policy one time in ten, and an
// estimate above the cap half the time for a canary at the cap: a second way to roll back, outside
// alpha. So at the last check of the hold — the step's 2 × planned-th window — the judge reports
// adverse evidence only when the step's evidence reaches 1/α_hold, where α_hold is HOLD_SHARE of
// the judge's alpha split over the planned steps; the breach threshold uses the rest
// (1 − HOLD_SHARE). The step's evidence at that check is an average, over the step's windows as
// onsets, of test supermartingales taken at a fixed count of windows, so Markov's inequality
// bounds P(≥ 1/α_hold) by α_hold; over the steps, by HOLD_SHARE · alpha.

/** Share of alpha kept for rolling back a held step. */
export const HOLD_SHARE = 0.1;

/** The alphas of the two ways a judge rolls back a canary: a breach (Ville) and a held step's end (per step). */
export function alphaSplit(alpha: number, plannedSteps: number): { breach: number; holdPerStep: number } {
  return { breach: alpha * (1 - HOLD_SHARE), holdPerStep: (alpha * HOLD_SHARE) / Math.max(1, plannedSteps) };
}

/** Whether this window is the last of its step's hold (the engine rolls back on adverse evidence here or later). */
export function holdEnds(stepChecks: readonly number[] | undefined, step: number, windowsInStep: number): boolean {
  const planned = stepChecks?.[step];
  return planned !== undefined && planned > 0 && windowsInStep >= 2 * planned;
}
