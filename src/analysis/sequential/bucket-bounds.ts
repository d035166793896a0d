// What a histogram proves about the requests slower than a line, and a within-bucket model that
// is used only when its fit is checked.
//
// A Prometheus histogram counts requests at its bucket edges only. When a line x (1.5 × stable's
// P95, a 2 s cap) lies inside a bucket (a, b], the requests slower than x are at least those slower
// than b (the lower bound) and at most those slower than a (the upper bound). A curve drawn through
// the edges invents the split: with ingress-nginx's buckets (… 1, 2.5 s) the monotone curve put 8%
// of a 1.3× canary's requests above 1.45 s where 1.7% were. So the judge rolls back on what the
// buckets prove, passes on what they allow, and splits a bucket only by a model fitted to all of
// the canary's buckets — an interval-censored log-normal (maximum likelihood) — whose fit is
// checked at every edge (no empirical share off the model's by more than 1 point plus the
// Kolmogorov–Smirnov 1% allowance 1.63/√n). A canary whose latency is not log-normal (two modes,
// a heavy tail) is judged on the bounds alone, and a check the bounds cannot decide says so.
// The model's own parameters are uncertain too: its split is a range (fit-uncertainty.ts).

import { standardNormalCdf } from './evidence.js';
import { bucketShareRange, cellsNegLogLik, cellsOf, lognormalCdf as cdf, parameterCovariance, probit, type FitCovariance } from './fit-uncertainty.js';
import { normalizeBuckets, totalCount, type Bucket } from './histogram.js';

export interface LognormalFit {
  mu: number;
  sigma: number;
  /** Largest gap between the empirical and the model's share at or below an edge. */
  deviation: number;
  /** The fit passed its check; only then may it split a bucket. */
  ok: boolean;
  /** Covariance of (μ, log σ) from the fit's observed information; null when they are not pinned down. */
  cov?: FitCovariance | null;
}

export interface AboveCounts {
  /** Requests provably slower than the line: slower than the edge at or above it. */
  lower: number;
  /** Requests possibly slower than the line: slower than the edge below it. */
  upper: number;
  /** The checked model's split of the bucket holding the line, or null without a checked fit. */
  model: number | null;
  /**
   * The split's range given the fit's parameter uncertainty (± z standard errors): what rollback
   * evidence (low) and passing (high) rest on; null without a checked fit.
   */
  modelLow: number | null;
  modelHigh: number | null;
  /** The bucket holding the line (equal edges when the line is on one). */
  edges: [number, number];
}

/** The bucket holding `x`: the largest edge at or below it (0 if none) and the smallest at or above it (Infinity if none). */
export function bucketAround(buckets: readonly Bucket[], x: number): [number, number] {
  let below = 0;
  let above = Number.POSITIVE_INFINITY;
  for (const b of buckets) {
    if (!Number.isFinite(b.le)) continue;
    if (b.le <= x && b.le > below) below = b.le;
    if (b.le >= x && b.le < above) above = b.le;
  }
  return [below, above];
}

function cumulativeAtEdge(normalized: readonly Bucket[], le: number): number {
  if (le <= 0) return 0;
  const total = totalCount(normalized);
  if (!Number.isFinite(le)) return total;
  return normalized.find((b) => b.le === le)?.count ?? 0;
}

/**
 * Requests slower than `x`: bounds from the buckets, and the checked model's split of the bucket
 * holding it, with its range at `zLow` (rollback) and `zHigh` (passing) standard errors.
 */
export function countsAbove(buckets: readonly Bucket[], x: number, fit: LognormalFit | null, zLow = 0, zHigh = zLow): AboveCounts {
  const normalized = normalizeBuckets(buckets);
  const total = totalCount(normalized);
  const [below, above] = bucketAround(normalized, x);
  const lower = Number.isFinite(above) ? Math.max(0, total - cumulativeAtEdge(normalized, above)) : 0;
  const upper = Math.max(lower, total - cumulativeAtEdge(normalized, below));
  if (!fit?.ok) return { lower, upper, model: null, modelLow: null, modelHigh: null, edges: [below, above] };
  const split = (share: number) => lower + share * (upper - lower);
  const [low, point] = bucketShareRange(fit, below, above, x, zLow);
  const high = bucketShareRange(fit, below, above, x, zHigh)[2];
  return { lower, upper, model: split(point), modelLow: split(low), modelHigh: split(high), edges: [below, above] };
}

/**
 * A log-normal through the edges around `x` only (two below it, two at or above it): a straight
 * line in probit-log space, fitted by least squares and checked at those edges like the global
 * fit. Latency far from the line (a second mode elsewhere, a fast bulk) does not matter to how a
 * bucket splits; the shape across the neighbouring buckets does.
 */
export function fitAround(buckets: readonly Bucket[], x: number): LognormalFit | null {
  const normalized = normalizeBuckets(buckets);
  const total = totalCount(normalized);
  const finite = normalized.filter((b) => Number.isFinite(b.le) && b.le > 0);
  if (!(total > 0)) return null;
  const nearEdges = [...finite.filter((b) => b.le < x).slice(-2), ...finite.filter((b) => b.le >= x).slice(0, 2)].filter(
    (b) => b.count / total > 0.0005 && b.count / total < 0.9995,
  );
  const near = nearEdges.map((b) => ({ lx: Math.log(b.le), p: b.count / total }));
  if (near.length < 3) return null;
  const ys = near.map((pt) => probit(pt.p));
  const mx = near.reduce((a, pt) => a + pt.lx, 0) / near.length;
  const my = ys.reduce((a, y) => a + y, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  near.forEach((pt, i) => {
    sxy += (pt.lx - mx) * ((ys[i] as number) - my);
    sxx += (pt.lx - mx) ** 2;
  });
  const slope = sxx > 0 ? sxy / sxx : 0;
  if (!(slope > 0)) return null;
  const sigma = 1 / slope;
  const mu = mx - my * sigma;
  let deviation = 0;
  for (const pt of near) deviation = Math.max(deviation, Math.abs(pt.p - standardNormalCdf((pt.lx - mu) / sigma)));
  // Its information: the grouped likelihood over the cells these edges make (least squares is not
  // that likelihood's maximum, but near it when the fit passes its check).
  const cov = parameterCovariance(cellsOf(buckets, nearEdges.map((b) => b.le)), { mu, sigma });
  return { mu, sigma, deviation, ok: deviation <= 0.01 + 1.63 / Math.sqrt(total), cov };
}

/** The q-quantile of a fitted log-normal (bisection on the normal CDF). */
export function lognormalQuantile(fit: { mu: number; sigma: number }, q: number): number {
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (standardNormalCdf(mid) < q) lo = mid;
    else hi = mid;
  }
  return Math.exp(fit.mu + fit.sigma * ((lo + hi) / 2));
}

/** Interval-censored log-normal by maximum likelihood (Nelder–Mead on μ, log σ), with its fit checked. */
export function fitLognormal(buckets: readonly Bucket[], start?: { mu: number; sigma: number } | null): LognormalFit | null {
  const normalized = normalizeBuckets(buckets).filter((b) => b.le > 0);
  const total = totalCount(normalized);
  const finite = normalized.filter((b) => Number.isFinite(b.le));
  if (!(total > 0) || finite.length < 3) return null;
  // Interval counts: (previous edge, edge], then beyond the last finite edge.
  const cells = cellsOf(normalized);
  const negLogLik = ([mu, logSigma]: number[]) => cellsNegLogLik(cells, mu as number, logSigma as number);
  // Start from the edges that hold the median and the 90th percentile.
  const edgeAt = (q: number) => (finite.find((b) => b.count >= q * total) ?? finite[finite.length - 1]) as Bucket;
  const m0 = Math.log(edgeAt(0.5).le);
  const s0 = Math.max(0.1, (Math.log(edgeAt(0.9).le) - m0) / 1.2816);
  // A previous fit (the step's buckets a window ago) is a closer start.
  const [mu, logSigma] = nelderMead(negLogLik, start ? [start.mu, Math.log(start.sigma)] : [m0, Math.log(s0)], start ? 0.05 : 0.3);
  const fit = { mu: mu as number, sigma: Math.exp(logSigma as number) };
  let deviation = 0;
  for (const b of finite) deviation = Math.max(deviation, Math.abs(b.count / total - cdf(fit, b.le)));
  return { ...fit, deviation, ok: deviation <= 0.01 + 1.63 / Math.sqrt(total), cov: parameterCovariance(cells, fit) };
}

function nelderMead(f: (p: number[]) => number, start: number[], step: number): number[] {
  let simplex = [start, [start[0]! + step, start[1]!], [start[0]!, start[1]! + step]].map((p) => ({ p, v: f(p) }));
  for (let i = 0; i < 200; i++) {
    simplex.sort((a, b) => a.v - b.v);
    const [best, mid, worst] = simplex as [{ p: number[]; v: number }, { p: number[]; v: number }, { p: number[]; v: number }];
    if (Math.abs(worst.v - best.v) < 1e-7 * (1 + Math.abs(best.v))) break;
    const centroid = [0, 1].map((k) => ((best.p[k] as number) + (mid.p[k] as number)) / 2);
    const along = (t: number) => centroid.map((c, k) => c + t * (c - (worst.p[k] as number)));
    const r = { p: along(1), v: 0 };
    r.v = f(r.p);
    if (r.v < best.v) {
      const e = { p: along(2), v: 0 };
      e.v = f(e.p);
      simplex = [best, mid, e.v < r.v ? e : r];
    } else if (r.v < mid.v) simplex = [best, mid, r];
    else {
      const c = { p: along(-0.5), v: 0 };
      c.v = f(c.p);
      if (c.v < worst.v) simplex = [best, mid, c];
      else simplex = [best, ...[mid, worst].map((s) => ({ p: s.p.map((x, k) => ((best.p[k] as number) + x) / 2), v: 0 }))].map((s) => ({ p: s.p, v: f(s.p) }));
    }
  }
  simplex.sort((a, b) => a.v - b.v);
  return (simplex[0] as { p: number[] }).p;
}
