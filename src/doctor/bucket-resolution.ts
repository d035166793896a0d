// Latency is known only at the histogram's resolution. A threshold on a bucket boundary is judged
// exactly (the count above it is a bucket count); one inside a bucket is only bracketed between
// the counts above the two edges around it, and the judge must say "cannot tell" when the truth
// could be either side. Doctor names the boundary to add before a rollout meets that.

export interface Resolution {
  exact: boolean;
  /** The bucket edges around the threshold when it lies inside a bucket (upper may be +Inf). */
  below?: number;
  above?: number;
}

// Bucket bounds come back as text ("2.5", "1e+00"); compare with a tolerance, not ===.
const same = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

export function resolutionAt(threshold: number, bounds: readonly number[]): Resolution {
  const finite = [...new Set(bounds.filter((b) => Number.isFinite(b)))].sort((a, b) => a - b);
  if (finite.some((b) => same(b, threshold))) return { exact: true };
  const below = [...finite].reverse().find((b) => b < threshold);
  const above = finite.find((b) => b > threshold) ?? Infinity;
  return { exact: false, ...(below !== undefined && { below }), above };
}

export function seconds(value: number): string {
  if (!Number.isFinite(value)) return '+Inf';
  return value < 1 ? `${Math.round(value * 1000 * 100) / 100}ms` : `${Math.round(value * 1000) / 1000}s`;
}

/** "between the 1s and 2.5s buckets" */
export function bracket(r: Resolution): string {
  const low = r.below === undefined ? 'the first bucket' : `le=${seconds(r.below)}`;
  const high = r.above === undefined || !Number.isFinite(r.above) ? '+Inf' : `le=${seconds(r.above)}`;
  return `between ${low} and ${high}`;
}
