// How far a within-bucket log-normal's split of a bucket can be trusted, given how many requests
// the fit rests on.
//
// The fitted μ and σ are estimates: fitted to a few hundred requests, they move by more than the
// difference between "5% slower than the line" and "10% slower". A split taken at the point
// estimate lets that fit noise decide a rollback. So the share of a bucket above a line is given
// as a range: the delta method on the fit's observed information (the Hessian of the
// interval-censored log-likelihood over the cells the fit used), ± z standard errors, z taken
// from the level the decision is made at (alpha for a rollback, beta for passing). Rollback
// evidence takes the range's low end, passing its high end; a range that spans both is a check
// the histogram cannot decide.

import { standardNormalCdf } from './evidence.js';
import { normalizeBuckets, totalCount, type Bucket } from './histogram.js';

/** Covariance of (μ, log σ): [var μ, cov, var log σ]. */
export type FitCovariance = [number, number, number];

export interface Cell {
  a: number;
  b: number;
  n: number;
}

export const lognormalCdf = (fit: { mu: number; sigma: number }, x: number): number =>
  x <= 0 ? 0 : !Number.isFinite(x) ? 1 : standardNormalCdf((Math.log(x) - fit.mu) / fit.sigma);

/**
 * Interval counts between consecutive edges (all finite positive edges when `edges` is omitted),
 * plus the cells below the first and beyond the last: the grouped data a fit's likelihood sees.
 */
export function cellsOf(buckets: readonly Bucket[], edges?: readonly number[]): Cell[] {
  const normalized = normalizeBuckets(buckets).filter((b) => b.le > 0);
  const total = totalCount(normalized);
  const finite = normalized.filter((b) => Number.isFinite(b.le) && (edges === undefined || edges.includes(b.le)));
  const cells: Cell[] = [];
  let prevLe = 0;
  let prevCount = 0;
  for (const b of finite) {
    cells.push({ a: prevLe, b: b.le, n: b.count - prevCount });
    prevLe = b.le;
    prevCount = b.count;
  }
  cells.push({ a: prevLe, b: Number.POSITIVE_INFINITY, n: total - prevCount });
  return cells;
}

/** Negative log-likelihood of grouped counts under a log-normal, parameterised by (μ, log σ). */
export function cellsNegLogLik(cells: readonly Cell[], mu: number, logSigma: number): number {
  const fit = { mu, sigma: Math.exp(logSigma) };
  let sum = 0;
  for (const c of cells) if (c.n > 0) sum -= c.n * Math.log(Math.max(1e-300, lognormalCdf(fit, c.b) - lognormalCdf(fit, c.a)));
  return sum;
}

/**
 * The inverse of the observed information at (μ, log σ), by central differences; null when the
 * cells do not pin both parameters down (a flat or non-convex likelihood there).
 */
export function parameterCovariance(cells: readonly Cell[], fit: { mu: number; sigma: number }): FitCovariance | null {
  const h = 1e-3;
  const m = fit.mu;
  const l = Math.log(fit.sigma);
  const f = (dm: number, dl: number) => cellsNegLogLik(cells, m + dm, l + dl);
  const f0 = f(0, 0);
  const hmm = (f(h, 0) - 2 * f0 + f(-h, 0)) / (h * h);
  const hll = (f(0, h) - 2 * f0 + f(0, -h)) / (h * h);
  const hml = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h);
  const det = hmm * hll - hml * hml;
  if (!(hmm > 0 && hll > 0 && det > 0) || !Number.isFinite(det)) return null;
  return [hll / det, -hml / det, hmm / det];
}

/** Share of the bucket (a, b] slower than x under a log-normal. */
export function bucketShareAbove(fit: { mu: number; sigma: number }, a: number, b: number, x: number): number {
  const mass = lognormalCdf(fit, b) - lognormalCdf(fit, a);
  return mass > 1e-12 ? Math.min(1, Math.max(0, (lognormalCdf(fit, b) - lognormalCdf(fit, x)) / mass)) : 0;
}

/**
 * The share of (a, b] slower than x: [low, point, high], the point ± z standard errors by the delta
 * method (clamped to [0, 1]). Without a covariance the range is the whole bucket: [0, point, 1].
 */
export function bucketShareRange(
  fit: { mu: number; sigma: number; cov?: FitCovariance | null },
  a: number,
  b: number,
  x: number,
  z: number,
): [number, number, number] {
  const point = bucketShareAbove(fit, a, b, x);
  const cov = fit.cov;
  if (!cov) return [0, point, 1];
  const h = 1e-4;
  const at = (dm: number, dl: number) => bucketShareAbove({ mu: fit.mu + dm, sigma: fit.sigma * Math.exp(dl) }, a, b, x);
  const gm = (at(h, 0) - at(-h, 0)) / (2 * h);
  const gl = (at(0, h) - at(0, -h)) / (2 * h);
  const variance = gm * gm * cov[0] + 2 * gm * gl * cov[1] + gl * gl * cov[2];
  const se = Math.sqrt(Math.max(0, variance));
  if (!Number.isFinite(se)) return [0, point, 1];
  return [Math.max(0, point - z * se), point, Math.min(1, point + z * se)];
}

/** Φ⁻¹ by bisection on the normal CDF. */
export function probit(p: number): number {
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (standardNormalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
