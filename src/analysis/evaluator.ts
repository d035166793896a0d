import type { MetricSpec } from '../policy/policy.js';
import type { CheckContext } from './check-context.js';
import type { CheckResult } from './types.js';

/** Judges one metric at each check. Created once per rollout, so a judge may keep evidence across checks. */
export interface MetricEvaluator {
  readonly metric: MetricSpec;
  evaluate(ctx: CheckContext): Promise<CheckResult[]>;
  /** The evidence a judge keeps across checks, JSON-safe (sequential judges only). */
  snapshot?(): unknown;
  restore?(state: unknown): void;
}
