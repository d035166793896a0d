// Prometheus histogram buckets as the latency judge consumes them: cumulative counts per upper
// bound `le` over a window (from `increase(..._bucket[1m])`, so possibly fractional and, through
// extrapolation, slightly non-monotonic).

export interface Bucket {
  /** Upper bound in seconds; Infinity for the +Inf bucket. */
  le: number;
  /** Requests at or below `le` (cumulative). */
  count: number;
}

/** Buckets sorted by bound, with counts made monotonic as histogram_quantile does. */
export function normalizeBuckets(buckets: readonly Bucket[]): Bucket[] {
  const sorted = buckets
    .filter((b) => !Number.isNaN(b.le))
    .map((b) => ({ le: b.le, count: Number.isFinite(b.count) && b.count > 0 ? b.count : 0 }))
    .sort((a, b) => a.le - b.le);
  let running = 0;
  for (const b of sorted) {
    running = Math.max(running, b.count);
    b.count = running;
  }
  return sorted;
}

export function totalCount(buckets: readonly Bucket[]): number {
  const last = buckets[buckets.length - 1];
  return last ? last.count : 0;
}

/** The bucket boundary nearest to `seconds` (the judge can only count requests at boundaries). */
export function nearestBoundary(bounds: readonly number[], seconds: number): number {
  let best = Number.NaN;
  for (const le of bounds) {
    if (!Number.isFinite(le)) continue;
    if (Number.isNaN(best) || Math.abs(Math.log(le / seconds)) < Math.abs(Math.log(best / seconds))) best = le;
  }
  return best;
}

/** Requests slower than the boundary nearest to `seconds`: total minus the cumulative count there. */
export function countSlowerThan(buckets: readonly Bucket[], seconds: number): number {
  const normalized = normalizeBuckets(buckets);
  const boundary = nearestBoundary(
    normalized.map((b) => b.le),
    seconds,
  );
  const at = normalized.find((b) => b.le === boundary);
  return at ? Math.max(0, totalCount(normalized) - at.count) : 0;
}

/**
 * The q-quantile by linear interpolation within the bucket, exactly as PromQL's
 * histogram_quantile; NaN when there are no requests.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number {
  const normalized = normalizeBuckets(buckets);
  const total = totalCount(normalized);
  if (!(total > 0) || normalized.length < 2) return Number.NaN;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < normalized.length; i++) {
    const b = normalized[i] as Bucket;
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return (normalized[i - 1] as Bucket | undefined)?.le ?? Number.NaN;
      if (i === 0 && b.le <= 0) return b.le;
      const inBucket = b.count - lowerCount;
      return inBucket > 0 ? lowerBound + (b.le - lowerBound) * ((rank - lowerCount) / inBucket) : b.le;
    }
    lowerBound = b.le;
    lowerCount = b.count;
  }
  return Number.NaN;
}

/**
 * The latency threshold for comparing slow fractions: the smallest bucket boundary at or above
 * stable's quantile (e.g. stable's P95 over the hour before the rollout), so that "slow" means
 * slower than stable usually is, and the count is exact at a boundary.
 */
export function chooseLatencyThreshold(stableBuckets: readonly Bucket[], quantile = 0.95): number | null {
  const value = histogramQuantile(quantile, stableBuckets);
  if (!Number.isFinite(value)) return null;
  const bounds = normalizeBuckets(stableBuckets)
    .map((b) => b.le)
    .filter((le) => Number.isFinite(le));
  const above = bounds.find((le) => le >= value - 1e-12);
  return above ?? bounds[bounds.length - 1] ?? null;
}

/**
 * Requests slower than `seconds`, interpolating linearly within the bucket that holds it, exactly
 * as histogram_quantile does: "canary's P95 > x" holds exactly when this exceeds 5% of requests.
 * Beyond the last finite bound nothing can be interpolated: only the +Inf bucket's count.
 */
export function countAbove(buckets: readonly Bucket[], seconds: number): number {
  const normalized = normalizeBuckets(buckets);
  const total = totalCount(normalized);
  if (!(total > 0)) return 0;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of normalized) {
    if (!Number.isFinite(b.le)) return Math.max(0, total - lowerCount);
    if (seconds <= b.le) {
      const width = b.le - lowerBound;
      const below = width > 0 ? lowerCount + (b.count - lowerCount) * Math.max(0, (seconds - lowerBound) / width) : b.count;
      return Math.max(0, total - below);
    }
    lowerBound = b.le;
    lowerCount = b.count;
  }
  return Math.max(0, total - lowerCount);
}

/** Adds bucket counts by bound. */
export function addBuckets(into: Map<number, number>, buckets: readonly Bucket[]): void {
  for (const b of normalizeBuckets(buckets)) into.set(b.le, (into.get(b.le) ?? 0) + b.count);
}

export function bucketsOf(map: ReadonlyMap<number, number> | ReadonlyArray<readonly [number, number]>): Bucket[] {
  return [...(map instanceof Map ? map.entries() : (map as ReadonlyArray<readonly [number, number]>))].map(([le, count]) => ({ le, count }));
}

/**
 * The cumulative count at `seconds`, read from the buckets by monotone cubic interpolation
 * (Fritsch & Carlson, SIAM J. Numer. Anal. 1980) on a log-seconds scale. ingress-nginx's default
 * buckets are coarse (0.1, 0.25, 0.5, 1, 2.5 s): inside one, latency is far from uniform, and the
 * straight line histogram_quantile draws puts a P95 near the bucket's top whatever it is, so that
 * a canary twice as slow can look only 1.3× slower. The curve through the neighbouring buckets
 * follows the distribution's bend and stays between the bucket's counts.
 */
export function cumulativeAt(buckets: readonly Bucket[], seconds: number): number {
  return cumulativeCurve(buckets)(seconds);
}

/** cumulativeAt as a function of seconds, with the curve built once (a quantile reads it many times). */
export function cumulativeCurve(buckets: readonly Bucket[]): (seconds: number) => number {
  const normalized = normalizeBuckets(buckets);
  const finite = normalized.filter((b) => Number.isFinite(b.le) && b.le > 0);
  const total = totalCount(normalized);
  if (!(total > 0) || finite.length === 0) return () => 0;
  const first = finite[0] as Bucket;
  const last = finite[finite.length - 1] as Bucket;
  const xs = finite.map((b) => Math.log(b.le));
  const ys = finite.map((b) => b.count);
  const n = xs.length;
  const d: number[] = [];
  for (let i = 0; i < n - 1; i++) d.push(((ys[i + 1] as number) - (ys[i] as number)) / ((xs[i + 1] as number) - (xs[i] as number)));
  const m: number[] = new Array<number>(n).fill(0);
  m[0] = d[0] ?? 0;
  m[n - 1] = d[n - 2] ?? 0;
  for (let i = 1; i < n - 1; i++) {
    const d0 = d[i - 1] as number;
    const d1 = d[i] as number;
    if (d0 <= 0 || d1 <= 0) continue;
    const h0 = (xs[i] as number) - (xs[i - 1] as number);
    const h1 = (xs[i + 1] as number) - (xs[i] as number);
    m[i] = (3 * (h0 + h1)) / ((2 * h1 + h0) / d0 + (h1 + 2 * h0) / d1);
  }
  return (seconds: number) => {
    if (seconds <= first.le) return first.count * Math.max(0, seconds / first.le);
    if (seconds >= last.le) return last.count;
    const x = Math.log(seconds);
    let k = 0;
    while (k < n - 2 && x > (xs[k + 1] as number)) k++;
    const h = (xs[k + 1] as number) - (xs[k] as number);
    const t = (x - (xs[k] as number)) / h;
    const y0 = ys[k] as number;
    const y1 = ys[k + 1] as number;
    const value =
      (2 * t ** 3 - 3 * t ** 2 + 1) * y0 + (t ** 3 - 2 * t ** 2 + t) * h * (m[k] as number) + (-2 * t ** 3 + 3 * t ** 2) * y1 + (t ** 3 - t ** 2) * h * (m[k + 1] as number);
    return Math.min(y1, Math.max(y0, value));
  };
}

/** Requests slower than `seconds`, on the same curve as cumulativeAt. */
export function smoothCountAbove(buckets: readonly Bucket[], seconds: number): number {
  return Math.max(0, totalCount(normalizeBuckets(buckets)) - cumulativeAt(buckets, seconds));
}

/** The q-quantile on the same curve (bisection); NaN without requests; the last finite bound when it lies beyond. */
export function smoothQuantile(q: number, buckets: readonly Bucket[]): number {
  const normalized = normalizeBuckets(buckets);
  const total = totalCount(normalized);
  const finite = normalized.filter((b) => Number.isFinite(b.le) && b.le > 0);
  if (!(total > 0) || finite.length === 0) return Number.NaN;
  const rank = q * total;
  const last = finite[finite.length - 1] as Bucket;
  if (last.count < rank) return last.le;
  let lo = 0;
  let hi = last.le;
  const curve = cumulativeCurve(normalized);
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (curve(mid) >= rank) hi = mid;
    else lo = mid;
  }
  return hi;
}
