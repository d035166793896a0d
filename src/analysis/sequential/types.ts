// What a sequential judge says after each check window. Plain data, so the engine can store it in
// the rollout record and `status` can show it exactly as it was decided.

/**
 * fail: roll back now. pass: this step may advance (the evidence rules out a regression as large
 * as the margin). inconclusive: keep watching; neither is settled yet.
 */
export type SequentialVerdict = 'fail' | 'pass' | 'inconclusive';

export interface SequentialDecision {
  decision: SequentialVerdict;
  /** Canary and stable rates over the current step (fractions): what the check's line shows. */
  canaryRate: number;
  stableRate: number;
  /** Canary minus stable over the whole rollout (fraction): estimate and a (1−α) time-uniform range. */
  difference: { estimate: number; lower: number; upper: number };
  /** The margin the canary was held to, as an absolute difference (fraction). */
  margin: number;
  /** 1 − (anytime-valid p-value) of the statement made: ≥ 1−α for fail, 1−β for pass. */
  confidence: number;
  /** Evidence ratio for a regression (rollback when it reaches 1/α). */
  evidence: number;
  /** For inconclusive: roughly how many more canary requests should settle it. */
  moreRequestsNeeded?: number;
  /** Canary requests and events behind the figures (the current step's). */
  canaryRequests: number;
  canaryEvents: number;
  stableRequests: number;
  stableEvents: number;
  /**
   * Why this step must not advance on schedule, or null: an estimate above a cap, or evidence
   * this step that leans towards a regression. The engine holds the step while it is set.
   */
  adverse: string | null;
  /**
   * At and after the end of a step's hold, adverse evidence too weak to roll back on within alpha
   * (an estimate above a cap, a lean): the step keeps holding, neither advanced nor rolled back,
   * until the judge decides. Null otherwise.
   */
  holding?: string | null;
  /** Estimated intra-class correlation of per-window rates (0 = binomial). */
  dispersion: number;
  /** Plain words for an operator, with the numbers that decided. */
  explanation: string;
}

/** One side's counts in one check window (may be fractional). */
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
  /** P(rolling back a canary the policy allows), over the whole rollout; default 0.01. */
  alpha?: number;
  /** P(passing a step of a canary worse by the margin); default 0.05. */
  beta?: number;
  /** Canary requests a step needs before it may pass; default 30. */
  minRequests?: number;
  /** Steps in the rollout (half the change-point weight sits on their starts); default 3. */
  plannedSteps?: number;
  /** Checks in the rollout when every step advances on time (horizon of the per-check weights); default 40. */
  plannedChecks?: number;
  /** Planned checks per step: a held step's last check (2 × planned) needs evidence at its share of alpha (hold.ts). */
  stepChecks?: readonly number[];
}

export const SHARED_DEFAULTS = {
  alpha: 0.01,
  beta: 0.05,
  minRequests: 30,
  plannedSteps: 3,
  plannedChecks: 40,
} as const;

/** Where the reported confidence sequence is tightest, in units of count variance. */
export const RHO = 2;

export interface SequentialJudge<W, D extends SequentialDecision = SequentialDecision> {
  observe(window: W): D;
  /** The evidence so far as JSON-safe data; a judge created with it continues where this one is. */
  snapshot(): Record<string, unknown>;
}
