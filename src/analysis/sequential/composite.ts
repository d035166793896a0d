// Composite hypotheses, tested against their least favourable point (universal inference).
//
// The policy's null is composite: "the canary is at most δ worse than stable, whatever stable's
// rate" and "the canary's rate is at most the cap". A likelihood ratio against one plug-in point of
// that null (stable's observed rate + δ) is not a test of it: with a stable at 0% errors the plug-in
// makes any canary error look like evidence, although a canary at 1% against a stable at 0% fits
// "at most 1.5 points worse" perfectly. So each span's evidence is
//
//   E_t = Π_i L_i(θ̂_{i−1}) / sup_{θ ∈ H0} Π_i L_i(θ)
//
// with a predictable numerator (each window's likelihood at an estimate fixed before that window
// was seen) and the null's maximum likelihood over the same windows in the denominator. For every
// θ0 in the null, E_t ≤ Π_i L_i(θ̂_{i−1}) / L_i(θ0), a test martingale under θ0; so E is an
// e-process for the whole composite null, and Ville's inequality bounds P(ever E ≥ 1/α) by α
// (Wasserman, Ramdas & Balakrishnan, "Universal inference", PNAS 2020, §7 running MLE; Ramdas,
// Grünwald, Vovk & Shafer, Statistical Science 2023). The numerator's estimate is the running
// estimate of the alternative (projected onto it), so the alternative is composite too: for every
// canary beyond the margin or the cap the evidence grows with traffic, at the Kullback–Leibler
// rate from the truth to the nearest null point.
//
// Likelihoods are binomial on effective counts: a window's counts divided by its variance
// inflation 1 + ρ·n (dispersion.ts), so the sums over a span are sufficient statistics.

/** x·ln p + (n−x)·ln(1−p), with 0·ln 0 = 0: a binomial log likelihood without its constant. */
export function binomialLogLik(x: number, n: number, p: number): number {
  const q = Math.min(1 - 1e-12, Math.max(1e-12, p));
  return (x > 0 ? x * Math.log(q) : 0) + (n - x > 0 ? (n - x) * Math.log(1 - q) : 0);
}

const clampRate = (p: number) => Math.min(1, Math.max(0, p));

/**
 * max over p ≤ cap of the canary's log likelihood: at its rate x/n, or at the cap when that is above it.
 */
export function capNullLogLik(x: number, n: number, cap: number): number {
  if (!(n > 0)) return 0;
  return binomialLogLik(x, n, Math.min(cap, clampRate(x / n)));
}

/**
 * max over (pc, ps) with pc − ps ≤ shift of the two sides' log likelihood (canary x of n, stable y
 * of m). When the sides' own rates satisfy the constraint, they are the maximum; otherwise it lies
 * on the boundary pc = ps + shift, where the log likelihood is concave in ps: bisection on its slope.
 */
export function differenceNullLogLik(x: number, n: number, y: number, m: number, shift: number): number {
  const pc = n > 0 ? clampRate(x / n) : 0;
  const ps = m > 0 ? clampRate(y / m) : 0;
  if (pc - ps <= shift) return binomialLogLik(x, n, pc) + binomialLogLik(y, m, ps);
  const f = (s: number) => binomialLogLik(x, n, s + shift) + binomialLogLik(y, m, s);
  const slope = (s: number) => {
    const c = s + shift;
    return (x > 0 ? x / c : 0) - (n - x > 0 ? (n - x) / (1 - c) : 0) + (y > 0 ? y / s : 0) - (m - y > 0 ? (m - y) / (1 - s) : 0);
  };
  let lo = 0;
  let hi = 1 - shift;
  const eps = 1e-13;
  if (slope(lo + eps) <= 0) return f(lo);
  if (slope(hi - eps) >= 0) return f(hi);
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (slope(mid) > 0) lo = mid;
    else hi = mid;
  }
  return f((lo + hi) / 2);
}

/**
 * A running estimate of a rate, shrunk towards `prior` by `weight` pseudo-requests: predictable
 * when the counts are those before the window it is used for.
 */
export function shrunkRate(events: number, requests: number, prior: number, weight: number): number {
  return clampRate((events + prior * weight) / (requests + weight));
}
