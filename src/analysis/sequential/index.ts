// Sequential (anytime-valid) judges for canary analysis: error rates and latency compared on
// counts, valid however often they look. See proportion-test.ts for the method and citations.

export { createErrorRateJudge, ERROR_RATE_DEFAULTS, type ErrorRateJudgeConfig } from './binomial-sequential.js';
export { createLatencyJudge, LATENCY_DEFAULTS, type LatencyDecision, type LatencyJudgeConfig, type LatencyWindow } from './latency-sequential.js';
export {
  chooseLatencyThreshold,
  countSlowerThan,
  histogramQuantile,
  nearestBoundary,
  normalizeBuckets,
  totalCount,
  type Bucket,
} from './histogram.js';
export {
  changePointWeight,
  createProportionTest,
  type EvidenceOrigin,
  type ProportionAssessment,
  type ProportionTestConfig,
  type ProportionWindow,
} from './proportion-test.js';
export { evidenceOriginWords, moreRequestsWords, plural } from './explain.js';
export { binomialLogLikelihoodRatio, normalMixtureRadius, standardNormalCdf, villeLogThreshold } from './evidence.js';
export { createRandom, type Random } from './random.js';
export type { ErrorRateWindow, RequestCounts, SequentialDecision, SequentialJudge, SequentialVerdict } from './types.js';
