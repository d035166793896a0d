// The few closed forms the sequential judges are built from. Each is small enough to check by
// hand, and the unit tests do.
//
// Anytime validity comes from Ville's inequality: if M_t is a non-negative supermartingale with
// M_0 = 1 under the null hypothesis, then P(∃t: M_t ≥ 1/a) ≤ a, however often M is looked at and
// whenever one stops (Ville 1939; see Ramdas, Grünwald, Vovk & Shafer, "Game-theoretic statistics
// and safe anytime-valid inference", Statistical Science 2023). A likelihood ratio of two simple
// hypotheses is such a martingale under the denominator's hypothesis, which is what makes Wald's
// sequential probability ratio test (Wald 1945) valid under continuous monitoring.

/** Log likelihood ratio of `events` out of `trials` under rate p1 against rate p0. */
export function binomialLogLikelihoodRatio(events: number, trials: number, p0: number, p1: number): number {
  const failures = trials - events;
  return (events > 0 ? events * Math.log(p1 / p0) : 0) + (failures > 0 ? failures * Math.log((1 - p1) / (1 - p0)) : 0);
}

/**
 * Log of the evidence threshold at which an e-value or likelihood ratio rejects at level `level`:
 * by Ville's inequality, a test martingale ever reaching 1/level has probability ≤ level.
 */
export function villeLogThreshold(level: number): number {
  return Math.log(1 / level);
}

/**
 * Radius of the two-sided normal-mixture confidence sequence (Robbins 1970; Howard, Ramdas,
 * McAuliffe & Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
 * Statistics 2021, eq. (14)): for a sum S_t of sub-Gaussian increments with variance process V_t,
 * P(∃t: |S_t| ≥ sqrt((V_t + ρ) · log((V_t + ρ) / (ρ · level²)))) ≤ level.
 * ρ sets the intrinsic time at which the boundary is tightest.
 */
export function normalMixtureRadius(variance: number, rho: number, level: number): number {
  const v = Math.max(0, variance) + rho;
  return Math.sqrt(v * Math.log(v / (rho * level * level)));
}

/** Standard normal CDF, via erfc (Abramowitz & Stegun 7.1.26 is too coarse in the tails). */
export function standardNormalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

// Numerical Recipes' erfc (Chebyshev fit), relative error below 1.2e-7 everywhere.
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** log(Σ exp(terms)), stable for large terms. */
export function logSumExp(terms: readonly number[]): number {
  let max = -Infinity;
  for (const t of terms) if (t > max) max = t;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (const t of terms) sum += Math.exp(t - max);
  return max + Math.log(sum);
}
