import type { CheckRecord } from '../analysis/types.js';
import type { StableFigures } from '../analysis/stable-watch.js';
import type { WatchProgress } from './watch-record.js';
import type { ControlsState } from './control-types.js';

// The rollout record is the single source of truth for `status`, `rollback` and `--resume`.
// It is stored (in a ConfigMap when live) after every transition, so it must stay small and
// self-explanatory: a person reading it with kubectl should understand where things stand.

export const RECORD_SCHEMA_VERSION = 1;

export type Phase =
  | 'initializing'
  | 'progressing'
  | 'promoting'
  /** Promoted in the cluster; spec.postPromotion watches stable against its baseline. */
  | 'watching'
  | 'promoted'
  /** The post-promotion watch (or `canary rollback` during it) set stable back to the previous image. */
  | 'rolled-back-after-promotion'
  | 'rolling-back'
  | 'rolled-back'
  | 'aborted'
  | 'failed';

export const FINAL_PHASES: readonly Phase[] = ['promoted', 'rolled-back', 'aborted', 'failed', 'rolled-back-after-promotion'];

export type OutcomeResult = 'promoted' | 'rolled-back' | 'aborted' | 'failed' | 'rolled-back-after-promotion';

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

/** How many checks came to each verdict. */
export interface CheckCounts {
  run: number;
  passed: number;
  failed: number;
  inconclusive: number;
  pending: number;
}

/**
 * Running counts over every check of the rollout, including those no longer kept in full, so the
 * limits, `status` and `--resume` do not depend on how many checks the record still holds.
 */
export interface CheckTallies extends CheckCounts {
  /** Failures counted against analysis.failureLimit (in a row, or in total, as the policy counts them). */
  failures: number;
  /** Inconclusive checks in a row, up to now (against analysis.inconclusiveLimit). */
  inconclusiveRun: number;
  /** Counts per step, indexed by step index (a resumed step keeps counting). */
  byStep: CheckCounts[];
}

/** The record keeps this many checks in full unless the policy says otherwise (analysis.historyLimit). */
export const DEFAULT_HISTORY_LIMIT = 50;

export function emptyCounts(): CheckCounts {
  return { run: 0, passed: 0, failed: 0, inconclusive: 0, pending: 0 };
}

export function emptyTallies(): CheckTallies {
  return { ...emptyCounts(), failures: 0, inconclusiveRun: 0, byStep: [] };
}

/** Adds one verdict to the counts ('info' is counted as run only). */
export function countVerdict(counts: CheckCounts, verdict: CheckRecord['verdict']): void {
  counts.run += 1;
  if (verdict === 'pass') counts.passed += 1;
  else if (verdict === 'fail') counts.failed += 1;
  else if (verdict === 'inconclusive') counts.inconclusive += 1;
  else if (verdict === 'pending') counts.pending += 1;
}

/**
 * The record's counts: its tallies, or for a record written before tallies existed (every check
 * was kept then), counted from its checks.
 */
export function countsOf(record: Pick<RolloutRecord, 'checks' | 'tallies'>): { total: CheckCounts; byStep: (index: number) => CheckCounts } {
  if (record.tallies) {
    const t = record.tallies;
    return { total: t, byStep: (i) => t.byStep[i] ?? emptyCounts() };
  }
  const total = emptyCounts();
  for (const c of record.checks) countVerdict(total, c.verdict);
  return {
    total,
    byStep: (i) => {
      const step = emptyCounts();
      for (const c of record.checks) if (c.stepIndex === i) countVerdict(step, c.verdict);
      return step;
    },
  };
}

/**
 * Appends a check and lets go of the oldest beyond `historyLimit`: the record stays bounded in
 * memory, so each save serialises it once, whatever the rollout's length.
 */
export function keepCheck(record: RolloutRecord, check: CheckRecord, historyLimit: number): void {
  record.checks.push(check);
  const over = record.checks.length - Math.max(1, historyLimit);
  if (over > 0) record.checks.splice(0, over);
}

/** What one smoke test found: the last attempt's request and response, as evidence. */
export interface SmokeResult {
  name: string;
  ok: boolean;
  /** Why it failed ("status 500, expected 200"), or what passed. */
  reason: string;
  attempts: number;
  method: string;
  url: string;
  /** null when no response came (timeout, connection refused). */
  status: number | null;
  /** The first 500 bytes of the response body. */
  excerpt: string;
}

/** The last smoke run, kept in the record (bounded: one run, one result per test). */
export interface SmokeRunRecord {
  at: string;
  /** "before traffic" or "after step N". */
  phase: string;
  results: SmokeResult[];
}

/** What one run of a policy hook (spec.hooks) found, as evidence. */
export interface HookResult {
  name: string;
  /** Where it ran: "pre-rollout", "step 2", "pre-promotion", "post-rollout". */
  at: string;
  ok: boolean;
  /** "exited 0", "exited 3", "killed by SIGKILL", "timed out after 30s: …", "could not start …". */
  status: string;
  /** null when it did not exit by itself (a signal, a timeout, never started). */
  exitCode: number | null;
  timedOut: boolean;
  /** The end of its output (stdout and stderr as they came), redacted, at most 1000 characters. */
  excerpt: string;
}

/** The states of the stop machine (stop-machine.ts), in order. */
export const STOP_STATES = ['requested', 'traffic-zero-confirmed', 'stable-restored', 'canary-scaled-down', 'recorded', 'released'] as const;
export type StopState = (typeof STOP_STATES)[number];

/** The stop as the record holds it (stop-machine.ts drives it): a handful of bounded fields, whatever the rollout's length. */
export interface StopProgress {
  state: StopState;
  /** Who asked for the stop ("deploy checkout-2026…", "alice", "signal"). */
  requestedBy: string;
  reason: string;
  /** What the record's outcome will be ('promoted' only with direction 'forward'). */
  result: OutcomeResult;
  /**
   * 'forward': past a promotion's point of no return (stable runs the new image and is available)
   * the stop finishes the promotion instead of setting stable back. Absent: a rollback.
   */
  direction?: 'forward';
  /** The exit code the outcome will carry, when the requester's differs from the result's own (a lost lease: 5). */
  exitCode?: number;
  /** The stopper driving the machine now: holder identity + epoch. */
  token: string;
  requestedAt: string;
  updatedAt: string;
  /**
   * A promotion had begun: stable goes back to this image (null: the record does not know it).
   * Absent: no promotion began, stable was never touched.
   */
  restoreImage?: string | null;
  /** What stable restore and verification found, in words. */
  stable?: string;
  /** Set when the canary could not be scaled down (the stop went on: traffic was at 0%): why, in words. */
  canary?: string;
  /** Where traffic is, as the confirming read showed it. */
  traffic?: string;
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
  policy: { name: string; source: string; plannedChecks: number; intervalMs: number; steps: { weight: number; durationMs: number; pause?: 'until-promoted' | number }[] };
  steps: StepHistory[];
  /** The most recent checks in full (at most the policy's analysis.historyLimit); older ones live on in `tallies`. */
  checks: CheckRecord[];
  /** Counts over every check of the rollout; absent only in records written before they existed. */
  tallies?: CheckTallies;
  /** The sequential judges' evidence (Analyzer.snapshot()), so `--resume` continues the step's judgement. */
  judge?: Record<string, unknown>;
  /** Who drives the rollout now, when a `--resume` took it over from the deploy that started it. */
  resumedBy?: string;
  /** `--retry`: the rolled-back or aborted rollout (same image) this one started again. */
  retryOf?: string;
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
  /** The last smoke-test run (spec.smokeTests), its requests and response excerpts as evidence. */
  smokeTests?: SmokeRunRecord;
  /** The last run of each policy hook (one entry per hook name, so bounded by the policy). */
  hooks?: HookResult[];
  outcome?: Outcome;
  /** A stop under way or done: the state the stop machine reached (stop-machine.ts), bounded. */
  stop?: StopProgress;
  /** spec.postPromotion: stable over the window before the rollout, measured at the start. */
  baseline?: StableFigures;
  /** spec.postPromotion: the watch after promotion (bounded: counts and the latest check only). */
  watch?: WatchProgress;
  /** Operator controls (`canary promote|pause|resume`) and the deploy's answers, bounded (controls.ts). */
  controls?: ControlsState;
}
