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
