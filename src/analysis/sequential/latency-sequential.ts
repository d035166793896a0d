// The sequential latency judge: compares the fraction of canary requests slower than a latency
// threshold with stable's, from histogram bucket counts per window, with the same anytime-valid
// machinery as the error-rate judge (proportion-test.ts).
//
// H0: the canary's slow fraction is no worse than stable's.
// H1: it is more than `ratio` × stable's (default 1.5×), and at least `floor` above it (default
//     1 point — when stable is rarely slow, 1.5× of almost nothing is noise, not a regression);
//     or, when `limit` is set, more than (1 − quantile) of canary requests are slower than the
//     limit (i.e. canary P95 above e.g. 2 s).
// The P95 of each side (interpolated like histogram_quantile) is reported as evidence only:
// a quantile of a window is not a count, and tests on it do not stay valid when re-run.

import { invalidInput } from '../../errors.js';
import { createProportionTest, type ProportionAssessment } from './proportion-test.js';
import { toDecision } from './binomial-sequential.js';
import { confidenceWords, evidenceOriginWords, moreRequestsWords, percent, plural, ratioWords } from './explain.js';
import { countSlowerThan, histogramQuantile, nearestBoundary, normalizeBuckets, totalCount, type Bucket } from './histogram.js';
import { SHARED_DEFAULTS, sharedSettings, type SequentialDecision, type SequentialJudge, type SharedJudgeConfig } from './types.js';

export interface LatencyJudgeConfig extends SharedJudgeConfig {
  /** Seconds; requests slower than the bucket boundary nearest to it are "slow". */
  threshold: number;
  /** Canary slow fraction may not exceed this multiple of stable's; default 1.5. */
  ratio?: number;
  /** Smallest absolute excess (fraction of requests) that counts as a regression; default 0.01. */
  floor?: number;
  /** Absolute latency limit in seconds (e.g. 2): canary's `quantile` must stay below it. */
  limit?: number;
  /** Quantile for the limit and for the reported P95; default 0.95. */
  quantile?: number;
}

export interface LatencyWindow {
  canary: { buckets: readonly Bucket[] };
  stable: { buckets: readonly Bucket[] };
  step?: number;
  /** When the window's counts begin (check time minus the window): explanations name it. */
  startedAt?: Date;
}

export interface LatencyDecision extends SequentialDecision {
  /** The threshold actually used (nearest bucket boundary), seconds. */
  threshold: number;
  /** Interpolated quantile (default P95) over the current step, NaN without requests. */
  canaryQuantile: number;
  stableQuantile: number;
}

export const LATENCY_DEFAULTS = { ...SHARED_DEFAULTS, ratio: 1.5, floor: 0.01, quantile: 0.95 } as const;

export function createLatencyJudge(config: LatencyJudgeConfig): SequentialJudge<LatencyWindow, LatencyDecision> {
  if (!(typeof config.threshold === 'number' && config.threshold > 0 && Number.isFinite(config.threshold))) {
    throw invalidInput(`latency judge: "threshold" must be a positive number of seconds, got ${String(config.threshold)}`);
  }
  const ratio = config.ratio ?? LATENCY_DEFAULTS.ratio;
  if (!(ratio > 1)) throw invalidInput(`latency judge: "ratio" must be above 1 (like 1.5), got ${String(ratio)}`);
  const floor = config.floor ?? LATENCY_DEFAULTS.floor;
  const quantile = config.quantile ?? LATENCY_DEFAULTS.quantile;
  const alpha = config.alpha ?? LATENCY_DEFAULTS.alpha;
  const beta = config.beta ?? LATENCY_DEFAULTS.beta;
  const cap = config.limit === undefined ? undefined : 1 - quantile;

  const test = createProportionTest({
    alpha,
    beta,
    margin: (stableSlow) => Math.max((ratio - 1) * stableSlow, floor),
    ...(cap === undefined ? {} : { cap, capMargin: Math.max(floor, cap / 2) }),
    ...sharedSettings(config),
  });

  let threshold = Number.NaN;
  let step: number | undefined;
  let canaryStepBuckets = new Map<number, number>();
  let stableStepBuckets = new Map<number, number>();

  return {
    observe(window) {
      const canary = normalizeBuckets(window.canary.buckets);
      const stable = normalizeBuckets(window.stable.buckets);
      const slowCanary = countSlowerThan(canary, config.threshold);
      const slowStable = countSlowerThan(stable, config.threshold);
      const used = nearestBoundary([...canary, ...stable].map((b) => b.le), config.threshold);
      if (!Number.isNaN(used)) threshold = used;
      if (window.step !== step) {
        step = window.step;
        canaryStepBuckets = new Map();
        stableStepBuckets = new Map();
      }
      accumulate(canaryStepBuckets, canary);
      accumulate(stableStepBuckets, stable);

      const assessment = test.observe({
        canary: {
          requests: totalCount(canary),
          events: slowCanary,
          ...(config.limit === undefined ? {} : { capEvents: countSlowerThan(canary, config.limit) }),
        },
        stable: {
          requests: totalCount(stable),
          events: slowStable,
          ...(config.limit === undefined ? {} : { capEvents: countSlowerThan(stable, config.limit) }),
        },
        ...(window.step === undefined ? {} : { step: window.step }),
        ...(window.startedAt === undefined ? {} : { startedAt: window.startedAt }),
      });
      const canaryQuantile = histogramQuantile(quantile, toBuckets(canaryStepBuckets));
      const stableQuantile = histogramQuantile(quantile, toBuckets(stableStepBuckets));
      const explanation = explainLatency(assessment, {
        threshold,
        ratio,
        alpha,
        beta,
        quantile,
        limit: config.limit,
        canaryQuantile,
        stableQuantile,
      });
      return { ...toDecision(assessment, explanation), threshold, canaryQuantile, stableQuantile };
    },
  };
}

function accumulate(into: Map<number, number>, buckets: readonly Bucket[]): void {
  for (const b of buckets) into.set(b.le, (into.get(b.le) ?? 0) + b.count);
}

function toBuckets(map: Map<number, number>): Bucket[] {
  return [...map.entries()].map(([le, c]) => ({ le, count: c }));
}

function seconds(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
}

interface LatencyWords {
  threshold: number;
  ratio: number;
  alpha: number;
  beta: number;
  quantile: number;
  limit: number | undefined;
  canaryQuantile: number;
  stableQuantile: number;
}

function explainLatency(a: ProportionAssessment, w: LatencyWords): string {
  const q = `P${Math.round(w.quantile * 100)}`;
  const tail = `${q} ${seconds(w.canaryQuantile)} vs ${seconds(w.stableQuantile)} this step`;
  const slow = `canary requests slower than ${seconds(w.threshold)}: ${percent(a.canaryRate)} vs stable ${percent(a.stableRate)}`;
  const origin = evidenceOriginWords(a.origin);
  switch (a.basis) {
    case 'no-data':
      return a.counts.canaryRequests <= 0
        ? 'no canary requests yet: nothing to judge'
        : 'no stable requests to compare with: nothing to judge';
    case 'cap':
      return `canary ${q} above ${seconds(w.limit ?? Number.NaN)} ${origin}: ${percent(a.canaryCapRate ?? 0)} of canary requests slower than that, more than ${percent(1 - w.quantile)}, with ${confidenceWords(1 - w.alpha)} confidence (${tail}; evidence ${ratioWords(a.evidence)})`;
    case 'difference':
      return `${slow} ${origin}: more than ${w.ratio}× stable's, with ${confidenceWords(1 - w.alpha)} confidence (${tail}; evidence ${ratioWords(a.evidence)}, rollback at ${ratioWords(1 / w.alpha)})`;
    case 'no-regression':
      return `${slow}: not more than ${w.ratio}× stable's, with ${confidenceWords(1 - w.beta)} confidence (${tail}; over ${plural(a.counts.canaryRequests, 'canary request')})`;
    case 'not-enough-evidence':
      return `${slow} over ${plural(a.counts.canaryRequests, 'canary request')}: not settled yet (${tail})${moreRequestsWords(a.moreRequestsNeeded, a.lastWindowCanaryRequests)}`;
  }
}
