import type { CheckRecord } from '../analysis/types.js';

// The rollout record is the single source of truth for `status`, `rollback` and `--resume`.
// It is stored (in a ConfigMap when live) after every transition, so it must stay small and
// self-explanatory: a person reading it with kubectl should understand where things stand.

export const RECORD_SCHEMA_VERSION = 1;

export type Phase =
  | 'initializing'
  | 'progressing'
  | 'promoting'
  | 'promoted'
  | 'rolling-back'
  | 'rolled-back'
  | 'aborted'
  | 'failed';

export const FINAL_PHASES: readonly Phase[] = ['promoted', 'rolled-back', 'aborted', 'failed'];

export type OutcomeResult = 'promoted' | 'rolled-back' | 'aborted' | 'failed';

export interface Outcome {
  result: OutcomeResult;
  reason: string;
  at: string;
  exitCode: number;
  /** Where traffic was left, in words ("canary at 0%, all traffic on stable"). */
  traffic: string;
}

/**
 * Where a promotion stood when the record was last saved, so `--resume` and a stop know what the
 * cluster may hold: traffic on the canary, stable being updated, traffic back on stable, or only
 * the canary left to scale down.
 */
export type PromotionStage = 'routing-to-canary' | 'updating-stable' | 'routing-to-stable' | 'scaling-down';

export interface StepHistory {
  index: number;
  weight: number;
  startedAt: string;
  endedAt?: string;
}

export interface RolloutRecord {
  schemaVersion: typeof RECORD_SCHEMA_VERSION;
  id: string;
  target: string;
  namespace: string;
  phase: Phase;
  stepIndex: number;
  weight: number;
  images: { stable: string | null; canary: string };
  startedBy: string;
  startedAt: string;
  updatedAt: string;
  /** The plan as it was when the rollout started, so `status` can say what comes next. */
  policy: { name: string; source: string; plannedChecks: number; intervalMs: number; steps: { weight: number; durationMs: number }[] };
  steps: StepHistory[];
  checks: CheckRecord[];
  /** Set while phase is promoting (and kept after a stop during promotion). */
  promotion?: PromotionStage;
  rollback?: {
    reason: string;
    requestedBy: string;
    at: string;
    stableVerified?: boolean;
    stableMessage?: string;
    /** A stop during promotion sets stable back to this image; done once stable runs it, available. */
    stableRestore?: { image: string | null; done: boolean; message: string };
  };
  outcome?: Outcome;
}
