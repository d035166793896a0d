// The sequential error-rate judge: canary against stable on error and request counts per check
// window, valid however often it looks. The statistics are in proportion-test.ts; this module
// sets the hypotheses for error rates and words the decisions.
//
// H0: the canary's error rate is no worse than stable's.
// H1: it is worse by at least `margin` (absolute; default 3 points), or above `cap` (default 5%).
// fail  — P(fail | H0) ≤ α over the whole rollout, however many checks (Wald's SPRT with Ville's
//         inequality, conditioned on each window's total errors as in Lindon, Sanden & Shirikian,
//         KDD 2022).
// pass  — this step may advance: a (1−β) time-uniform upper bound on the difference (Howard et al.,
//         Annals of Statistics 2021) is below the margin, so P(pass | worse by the margin) ≤ β.
// Regressions smaller than the margin are the indifference zone: either decision is acceptable.
// One judge follows one rollout; evidence carries across steps (pass `step` with each window) and
// restarts at every window too, so a regression that begins mid-step is not diluted by the
// step's healthy minutes (a mixture over change points; see proportion-test.ts).

import { invalidInput } from '../../errors.js';
import { confidenceWords, evidenceOriginWords, marginWords, moreRequestsWords, percent, plural, points, ratioWords } from './explain.js';
import { createProportionTest, type ProportionAssessment } from './proportion-test.js';
import { SHARED_DEFAULTS, sharedSettings, type ErrorRateWindow, type SequentialDecision, type SequentialJudge, type SharedJudgeConfig } from './types.js';

export interface ErrorRateJudgeConfig extends SharedJudgeConfig {
  /** Absolute margin over stable's error rate (fraction); default 0.03. */
  margin?: number;
  /** Absolute cap on the canary's error rate (fraction); default 0.05; null for none. */
  cap?: number | null;
}

export const ERROR_RATE_DEFAULTS = { ...SHARED_DEFAULTS, margin: 0.03, cap: 0.05 } as const;

export function createErrorRateJudge(config: ErrorRateJudgeConfig = {}): SequentialJudge<ErrorRateWindow> {
  const margin = config.margin ?? ERROR_RATE_DEFAULTS.margin;
  const cap = config.cap === undefined ? ERROR_RATE_DEFAULTS.cap : config.cap;
  const alpha = config.alpha ?? ERROR_RATE_DEFAULTS.alpha;
  const beta = config.beta ?? ERROR_RATE_DEFAULTS.beta;
  checkFraction('margin', margin, 'an absolute error-rate margin like 0.03 (3 points)');
  if (cap !== null) checkFraction('cap', cap, 'a maximum error rate like 0.05 (5%)');
  checkFraction('alpha', alpha, 'a false-rollback probability like 0.01');
  checkFraction('beta', beta, 'a missed-regression probability like 0.05');

  const test = createProportionTest({
    alpha,
    beta,
    margin: () => margin,
    // The cap test's alternative sits half the cap above it (7.5% for a 5% cap).
    ...(cap === null ? {} : { cap, capMargin: cap / 2 }),
    ...sharedSettings(config),
  });

  return {
    observe(window) {
      const assessment = test.observe({
        canary: { requests: window.canary.requests, events: window.canary.errors, capEvents: window.canary.errors },
        stable: { requests: window.stable.requests, events: window.stable.errors, capEvents: window.stable.errors },
        ...(window.step === undefined ? {} : { step: window.step }),
        ...(window.startedAt === undefined ? {} : { startedAt: window.startedAt }),
      });
      return toDecision(assessment, explainErrorRate(assessment, { alpha, beta, cap }));
    },
  };
}

export function toDecision(a: ProportionAssessment, explanation: string): SequentialDecision {
  return {
    decision: a.verdict,
    canaryRate: a.canaryRate,
    stableRate: a.stableRate,
    difference: a.difference,
    margin: a.margin,
    confidence: a.confidence,
    evidence: a.evidence,
    ...(a.moreRequestsNeeded === undefined ? {} : { moreRequestsNeeded: a.moreRequestsNeeded }),
    canaryRequests: a.counts.canaryRequests,
    canaryEvents: a.counts.canaryEvents,
    stableRequests: a.counts.stableRequests,
    stableEvents: a.counts.stableEvents,
    explanation,
  };
}

function explainErrorRate(a: ProportionAssessment, levels: { alpha: number; beta: number; cap: number | null }): string {
  const rates = `canary errors ${percent(a.canaryRate)} vs stable ${percent(a.stableRate)}`;
  const range = `difference ${points(a.difference.estimate)}, ${confidenceWords(1 - levels.alpha)} range ${points(a.difference.lower)} to ${points(a.difference.upper)}`;
  const origin = evidenceOriginWords(a.origin);
  switch (a.basis) {
    case 'no-data':
      return a.counts.canaryRequests <= 0
        ? 'no canary requests yet: nothing to judge'
        : 'no stable requests to compare with: nothing to judge';
    case 'cap':
      return `canary errors ${percent(a.canaryCapRate ?? a.canaryRate)} vs stable ${percent(a.stableRate)} ${origin}: above the ${percent(levels.cap ?? 0)} cap, with ${confidenceWords(1 - levels.alpha)} confidence (evidence ${ratioWords(a.evidence)}, rollback at ${ratioWords(1 / levels.alpha)})`;
    case 'difference': {
      // The SPRT accepts "worse by the margin" over "no worse" with error ≤ α; when the estimate
      // is still under the margin, say so rather than overstate it.
      const how =
        a.difference.estimate >= a.margin
          ? `worse by the ${marginWords(a.margin)} margin`
          : `worse than stable by ${points(a.difference.estimate)} (under the ${marginWords(a.margin)} margin, but beyond chance)`;
      return `${rates} ${origin}: ${how}, with ${confidenceWords(1 - levels.alpha)} confidence (evidence ${ratioWords(a.evidence)} for a regression, rollback at ${ratioWords(1 / levels.alpha)})`;
    }
    case 'no-regression':
      return `${rates}: not worse by the ${marginWords(a.margin)} margin, with ${confidenceWords(1 - levels.beta)} confidence (difference at most ${points(a.passBound)} over ${plural(a.counts.canaryRequests, 'canary request')})`;
    case 'not-enough-evidence':
      return `${rates} over ${plural(a.counts.canaryRequests, 'canary request')}: not settled yet (${range})${moreRequestsWords(a.moreRequestsNeeded, a.lastWindowCanaryRequests)}`;
  }
}

function checkFraction(field: string, value: number, expected: string): void {
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw invalidInput(`sequential judge: "${field}" must be between 0 and 1 exclusive, got ${String(value)}; expected ${expected}`);
  }
}
