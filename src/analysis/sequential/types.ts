// What a sequential judge says after each check window. Plain data, so the engine can store it in
// the rollout record and `status` can show it exactly as it was decided.

/**
 * fail: roll back now. pass: this step may advance (the evidence rules out a regression as large
 * as the margin). inconclusive: keep watching; neither is settled yet.
 */
export type SequentialVerdict = 'fail' | 'pass' | 'inconclusive';

export interface SequentialDecision {
  decision: SequentialVerdict;
  /** Canary and stable rates over the evidence the decision rests on (fractions). */
  canaryRate: number;
  stableRate: number;
  /** Canary minus stable (fraction): stratified estimate and a (1−α) time-uniform range. */
  difference: { estimate: number; lower: number; upper: number };
  /** The margin the canary was held to, as an absolute difference (fraction). */
  margin: number;
  /** 1 − (anytime-valid p-value) of the statement made: ≥ 1−α for fail, 1−β for pass. */
  confidence: number;
  /** Evidence ratio for a regression (rollback when it reaches 1/α). */
  evidence: number;
  /** For inconclusive: roughly how many more canary requests should settle it. */
  moreRequestsNeeded?: number;
  /** Canary requests and events behind the figures. */
  canaryRequests: number;
  canaryEvents: number;
  stableRequests: number;
  stableEvents: number;
  /** Plain words for an operator, with the numbers that decided. */
  explanation: string;
}

/** One side's counts in one check window, as `increase(...[window])` gives them (may be fractional). */
export interface RequestCounts {
  requests: number;
  errors: number;
}

export interface ErrorRateWindow {
  canary: RequestCounts;
  stable: RequestCounts;
  /** Rollout step index (0-based) of this window; evidence carries across steps. */
  step?: number;
  /** When the window's counts begin (check time minus the window): explanations name it. */
  startedAt?: Date;
}

/** Settings both sequential judges share. */
export interface SharedJudgeConfig {
  /** P(rolling back a canary no worse than stable), over the whole rollout; default 0.01. */
  alpha?: number;
  /** P(passing a canary worse by the margin); default 0.05. */
  beta?: number;
  /** Canary requests a step needs before it may pass; default 30. */
  minRequests?: number;
  /** Steps in the rollout (half the change-point weight sits on their starts); default 3. */
  plannedSteps?: number;
  /** Checks in the rollout when every step advances on time (horizon of the per-check weights); default 40. */
  plannedChecks?: number;
  /** Prior squared coefficient of variation of per-minute rates; default 0.1 (about ±30%). */
  dispersionPrior?: number;
}

export const SHARED_DEFAULTS = {
  alpha: 0.01,
  beta: 0.05,
  minRequests: 30,
  plannedSteps: 3,
  plannedChecks: 40,
  dispersionPrior: 0.1,
} as const;

/** Where the reported confidence sequence is tightest, in units of count variance. */
export const RHO = 2;

/** The shared settings with their defaults, as createProportionTest takes them. */
export function sharedSettings(config: SharedJudgeConfig) {
  return {
    minRequests: config.minRequests ?? SHARED_DEFAULTS.minRequests,
    plannedSteps: config.plannedSteps ?? SHARED_DEFAULTS.plannedSteps,
    plannedChecks: config.plannedChecks ?? SHARED_DEFAULTS.plannedChecks,
    dispersionPrior: config.dispersionPrior ?? SHARED_DEFAULTS.dispersionPrior,
    rho: RHO,
  };
}

export interface SequentialJudge<W, D extends SequentialDecision = SequentialDecision> {
  observe(window: W): D;
}
