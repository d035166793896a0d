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
  rollback?: { reason: string; requestedBy: string; at: string; stableVerified?: boolean; stableMessage?: string };
  outcome?: Outcome;
  /** The sequential judges' evidence (Analyzer.snapshot()), so `--resume` continues the step's judgement. */
  judge?: Record<string, unknown>;
}
