// Overdispersion: real error and slow-request counts vary more from minute to minute than a
// binomial would (bursts, a bad pod, a retry storm). We model it as negative-binomial-like extra
// variance, Var = v + κ·a, where v is the binomial variance and a grows with the square of the
// expected count — a per-minute rate multiplier with squared coefficient of variation κ does
// exactly this. κ is estimated by the method of moments from per-window residuals (the
// quasi-likelihood approach of Wedderburn 1974 / McCullagh & Nelder, "Generalized Linear Models",
// §4.5), shrunk toward a prior so that a handful of windows cannot make it collapse to zero.
//
// Windows are only added after they were judged, so the κ a window is judged with depends on
// earlier windows only ("predictable plug-in", as in Waudby-Smith & Ramdas, "Estimating means of
// bounded random variables by betting", JRSS-B 2024): the tempered likelihood ratio keeps its
// supermartingale property whenever the plug-in κ is at least the true one.

export interface DispersionEstimator {
  /** κ to judge a window with, whose extra-variance coefficient is `scale` (prior weight scales with it). */
  kappa(scale: number): number;
  /** Record a judged window: residual against the fitted rate, its binomial variance, its coefficient a. */
  add(residual: number, variance: number, scale: number): void;
}

export function createDispersionEstimator(prior: number, priorWindows = 10, maxKappa = 4): DispersionEstimator {
  let excess = 0;
  let weight = 0;
  return {
    kappa(scale) {
      const priorWeight = priorWindows * Math.max(scale, 1e-9);
      const estimate = (prior * priorWeight + excess) / (priorWeight + weight);
      return Math.min(maxKappa, Math.max(0, estimate));
    },
    add(residual, variance, scale) {
      if (!(variance > 0) || !(scale > 0) || !Number.isFinite(residual)) return;
      excess += residual * residual - variance;
      weight += scale;
    },
  };
}
