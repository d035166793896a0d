// Sequential (anytime-valid) judges for canary analysis: error rates and latency quantiles tested
// as the policy states them, valid however often they look. See change-point.ts for the method.

export { createErrorRateJudge, ERROR_RATE_DEFAULTS, type ErrorRateJudgeConfig, type ErrorRateJudgeState } from './binomial-sequential.js';
export {
  createLatencyJudge,
  LATENCY_DEFAULTS,
  type LatencyDecision,
  type LatencyJudgeConfig,
  type LatencyJudgeState,
  type LatencyWindow,
} from './latency-sequential.js';
export { countAbove, countSlowerThan, histogramQuantile, nearestBoundary, normalizeBuckets, totalCount, type Bucket } from './histogram.js';
export { changePointWeight, createChangePointMixture, type ChangePointState } from './change-point.js';
export { createDispersionEstimator, dispersionFromBaseline, type DispersionBaseline, type DispersionState } from './dispersion.js';
export { evidenceOriginWords, moreRequestsWords, plural } from './explain.js';
export { binomialLogLikelihoodRatio, normalMixtureRadius, standardNormalCdf, villeLogThreshold } from './evidence.js';
export { createRandom, type Random } from './random.js';
export type { ErrorRateWindow, RequestCounts, SequentialDecision, SequentialJudge, SequentialVerdict } from './types.js';
