// The canary's own latency wander, learned so that a regression's onset does not pass for it.
//
// The latency judge divides each window's log likelihood ratio by 1 + ρ·n for the window-to-window
// wander of the canary's share above the line (latency-sequential.ts). ρ comes, as in
// dispersion.ts, from successive differences of that share: a difference d between windows of n₁
// and n₂ requests gives u = d² / (2·p(1−p)), whose mean is ρ + b, b = (1/n₁ + 1/n₂)/2 the binomial
// part. Three things make that estimate safe to charge (docs/judge.md, "The canary's latency
// wander, valid and fast"):
//
// - Onsets. A wander is many moderate differences; a regression's onset is one large one (a 2×
//   canary's share jumps from 5% to 14% above the line). In a mean it counts as wander and lets the
//   regression's next windows pass for noise (a cap on ρ, the old guard, also capped the wander the
//   null allows). A difference is left out when it lies more than OUTLIER robust scales out, the
//   scale being the recent differences' median over χ²₁'s (Gaussian windows: u ≈ (ρ + b)·χ²₁), and
//   never below their binomial part. Under a wander alone P(χ²₁ > 16) ≈ 6·10⁻⁵ a difference.
// - Skew. A median that wanders log-normally makes the share above the line right-skewed, and a
//   binomial likelihood ratio divided by 1 + ρ·n is a supermartingale for a Gaussian share, not for
//   a skewed one: at many requests a window, a canary at the null's boundary whose median wanders
//   by 10% or 20% a scrape needs ρ between 1.2× and 1.5× its share's variance ratio before
//   E[e^increment] falls to 1 (numerically: 10 and 2.5 at 1×, 0.67 and 0.89 at 1.5×). The estimate
//   is charged SKEW times: at 1.5× the boundary at TAU 0.2 was still rolled back 0.57% of 6,000
//   times at alpha 0.5% (the estimate from a few windows is often low), at 2× 0.35%.
// - The first windows. Until the canary has windows, nothing about its wander is known: its first
//   window is judged with FIRST_RHO, a share wandering by ±2.5 points at 5%, which is what a median
//   moving by 20% a scrape shows in a window of two scrapes before the skew allowance, and the
//   floor falls to the dispersion estimator's cautious 0.003 over FLOOR_WINDOWS differences, then
//   to 0 over as many again, as the estimate takes over.
// - Small windows. Below SMALL_WINDOW requests a window, binomial noise hides an onset from the
//   outlier test (a 2× onset at 30 requests is about one binomial scale, not 16), so an onset
//   inflates the estimate as it did before there was a guard, and a 2× regression at 1–10 req/s
//   took half as long again (a mean of 14.5 → 21.5 checks from a mid-step onset; 16.1 with the cap). There the estimate keeps the
//   old cap, SMALL_WINDOW_MAX_RHO: the binomial variance per window, p(1−p)/n at p = 5%, is then at
//   least twice what that ρ adds, and the 1.40× boundary at TAU 0.2 stays within alpha (5–20 req/s:
//   4 of 3,000; 10–30: 8 of 3,000, as without the cap; a cap to 100 requests doubled the first).

/** Recent differences kept as [u, b]; older ones are folded into the sums (outliers left out). */
const RECENT = 24;
/** A difference more than this many robust scales out is an onset, not wander. */
const OUTLIER = 16;
/** Differences needed before one can be called an outlier (a median of fewer says little). */
const MIN_FOR_OUTLIER = 4;
/** Median of χ²₁: the robust scale is median(u) / this. */
const CHI2_MEDIAN = 0.4549;
/** How much more than its share's variance ratio a skewed wander must be charged (see above). */
const SKEW = 2;
/** ρ before the canary's first difference. */
const FIRST_RHO = 0.012;
/** Differences over which the floor falls from FIRST_RHO to SETTLED_FLOOR (then to 0 over as many). */
const FLOOR_WINDOWS = 4;
/** dispersion.ts's cautious floor. */
const SETTLED_FLOOR = 0.003;
/** Standard errors of the mean contribution (from their observed spread) ρ is judged above it, as dispersion.ts's canary estimator. */
const SPREAD_ALLOWANCE = 1.5;
/** Below this many canary requests a window the estimate is capped at SMALL_WINDOW_MAX_RHO (see above). */
const SMALL_WINDOW = 50;
const SMALL_WINDOW_MAX_RHO = 0.01;
/** ρ beyond this is a broken query, not noise (as in dispersion.ts). */
const MAX_RHO = 0.1;

export interface CanaryWanderState {
  recent: Array<[number, number]>;
  /** Σ (u − b), Σ (u − b)² and their count over differences aged out of `recent`, outliers left out. */
  sum: number;
  sumSq: number;
  count: number;
  /** Differences seen, outliers included. */
  seen: number;
  last: { rate: number; requests: number } | null;
  /** Pooled events and requests, for p(1−p). */
  events: number;
  requests: number;
}

export interface CanaryWander {
  /** ρ to judge the next window with, of `requests` canary requests. */
  rho(requests?: number): number;
  /** Differences seen (outliers included). */
  windows(): number;
  /** Adds one canary window (after it was judged): requests above the line, requests. */
  add(events: number, requests: number): void;
  state(): CanaryWanderState;
}

export function createCanaryWander(initial?: CanaryWanderState): CanaryWander {
  const s: CanaryWanderState = initial ? structuredClone(initial) : { recent: [], sum: 0, sumSq: 0, count: 0, seen: 0, last: null, events: 0, requests: 0 };
  return {
    rho(requests) {
      const limit = outlierLimit(s.recent);
      let sum = s.sum;
      let sumSq = s.sumSq;
      let n = s.count;
      for (const [u, b] of s.recent) {
        if (u > limit) continue;
        sum += u - b;
        sumSq += (u - b) ** 2;
        n += 1;
      }
      let upper = 0;
      if (n > 0) {
        const mean = Math.max(0, sum / n);
        const spread = Math.max(0, sumSq / n - (sum / n) ** 2);
        // The chi-square's relative error, and the contributions' own spread (which holds when the
        // estimate comes out near 0 by chance), as dispersion.ts's canary estimator.
        upper = Math.max(mean * (1 + Math.sqrt(2 / n)), mean + (n >= 2 ? SPREAD_ALLOWANCE * Math.sqrt(spread / n) : 0));
      }
      const rho = Math.min(MAX_RHO, Math.max(SKEW * upper, floorAt(s.seen)));
      return requests !== undefined && requests < SMALL_WINDOW ? Math.min(SMALL_WINDOW_MAX_RHO, rho) : rho;
    },
    windows: () => s.seen,
    add(events, requests) {
      if (!(requests > 0) || !Number.isFinite(events)) return;
      const rate = Math.min(1, Math.max(0, events / requests));
      s.events += Math.max(0, events);
      s.requests += requests;
      const p = (s.events + 0.5) / (s.requests + 1);
      if (s.last) {
        const d = rate - s.last.rate;
        s.seen += 1;
        s.recent.push([(d * d) / (2 * p * (1 - p)), (1 / requests + 1 / s.last.requests) / 2]);
        if (s.recent.length > RECENT) {
          // Aged out: judged against the scale of the differences around it, then kept as a sum.
          const limit = outlierLimit(s.recent);
          const [u, b] = s.recent.shift() as [number, number];
          if (u <= limit) {
            s.sum += u - b;
            s.sumSq += (u - b) ** 2;
            s.count += 1;
          }
        }
      }
      s.last = { rate, requests };
    },
    state: () => structuredClone(s),
  };
}

/** The largest u that counts as wander: OUTLIER robust scales, the scale never below the binomial part. */
function outlierLimit(recent: ReadonlyArray<readonly [number, number]>): number {
  if (recent.length < MIN_FOR_OUTLIER) return Number.POSITIVE_INFINITY;
  // A median of a few differences can come out far below what binomial noise alone gives.
  const binomial = recent.reduce((a, [, b]) => a + b, 0) / recent.length;
  return OUTLIER * Math.max(median(recent.map(([u]) => u)) / CHI2_MEDIAN, binomial);
}

function floorAt(seen: number): number {
  if (seen < FLOOR_WINDOWS) return FIRST_RHO + ((SETTLED_FLOOR - FIRST_RHO) * seen) / FLOOR_WINDOWS;
  return SETTLED_FLOOR * Math.max(0, 1 - (seen - FLOOR_WINDOWS) / FLOOR_WINDOWS);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
