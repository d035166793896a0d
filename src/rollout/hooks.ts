// Policy hooks (spec.hooks): the use case over the HookRunner port. The engine calls runHookPoint
// at pre-rollout, after each step, before promotion and after the outcome; the process adapter is
// src/hooks/command-runner.ts. A failing hook before the outcome is a Halt (rolled back, exit 3)
// through the one stop path; after the outcome it is reported and changes nothing.

import type { HookPoint, HookSpec } from '../policy/hooks-schema.js';
import { EXIT } from '../errors.js';
import { Halt } from './halt.js';
import type { HookResult, OutcomeResult } from './record.js';

export type { HookResult } from './record.js';

/** The rollout as a hook sees it, in its environment (hookEnvironment). */
export interface HookContext {
  target: string;
  namespace: string;
  image: string;
  stableImage: string | null;
  rolloutId: string;
  at: HookPoint;
  /** The record's phase ("progressing", "promoted", …). */
  phase: string;
  /** 1-based; 0 before the first step. */
  step: number;
  steps: number;
  weight: number;
  /** post-rollout only. */
  outcome?: { result: OutcomeResult; exitCode: number; reason: string };
}

/** The port: runs one hook to its end (exit, timeout or cancellation) and says what it found. */
export interface HookRunner {
  run(hook: HookSpec, context: HookContext, signal?: AbortSignal): Promise<HookResult>;
}

/** The rollout's context as environment variables: what every hook gets, whatever the policy adds. */
export function hookEnvironment(c: HookContext): Record<string, string> {
  return {
    CANARY_TARGET: c.target,
    CANARY_NAMESPACE: c.namespace,
    CANARY_IMAGE: c.image,
    CANARY_STABLE_IMAGE: c.stableImage ?? '',
    CANARY_ROLLOUT_ID: c.rolloutId,
    CANARY_HOOK: c.at,
    CANARY_PHASE: c.phase,
    CANARY_STEP: String(c.step),
    CANARY_STEPS: String(c.steps),
    CANARY_WEIGHT: String(c.weight),
    ...(c.outcome && { CANARY_OUTCOME: c.outcome.result, CANARY_EXIT_CODE: String(c.outcome.exitCode) }),
  };
}

/** One line of evidence: the hook, where, how it ended, and the end of its output. */
export function describeHook(r: HookResult): string {
  const output = r.excerpt ? `; output: ${JSON.stringify(r.excerpt)}` : '; no output';
  return `hook "${r.name}" ${r.ok ? 'passed' : 'failed'} at ${r.at}: ${r.status}${r.ok ? '' : output}`;
}

export interface HookPointDeps {
  hooks: readonly HookSpec[];
  context: HookContext;
  /** Where, in words: "pre-rollout", "step 2". */
  label: string;
  /** Absent in a dry-run, a replay, a backtest: nothing was deployed for a hook to act on. */
  runner?: HookRunner;
  signal?: AbortSignal;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  throwIfCancelled: () => void;
}

/**
 * Runs the policy's hooks for one point, in policy order. Before the outcome the first failure
 * stops the rest (a later hook may rely on it) and throws HookFailed; post-rollout runs them all
 * and only reports. Returns what ran, for the record.
 */
export async function runHookPoint(deps: HookPointDeps): Promise<HookResult[]> {
  const { context, runner, label, log } = deps;
  const hooks = deps.hooks.filter((h) => h.at === context.at);
  if (hooks.length === 0) return [];
  if (!runner) {
    for (const h of hooks) log('info', `would run hook "${h.name}" at ${label}: ${JSON.stringify(h.command)} (skipped: a dry-run or replay deploys nothing for it to act on)`);
    return [];
  }
  const after = context.at === 'post-rollout';
  const results: HookResult[] = [];
  for (const hook of hooks) {
    if (!after) deps.throwIfCancelled();
    log('info', `running hook "${hook.name}" at ${label}: ${JSON.stringify(hook.command)}`);
    const result = { ...(await runner.run(hook, context, deps.signal)), at: label };
    results.push(result);
    if (result.ok) {
      log('info', describeHook(result));
      continue;
    }
    if (after) {
      log('warn', `${describeHook(result)}; the outcome stands (${context.outcome?.result ?? 'unknown'})`);
      continue;
    }
    // Killed because the deploy was cancelled: that cancellation is the story, not the hook.
    deps.throwIfCancelled();
    log('error', describeHook(result));
    throw new HookFailed(describeHook(result), results);
  }
  return results;
}

/** A hook failed before the outcome: rolled back (exit 3), with what ran to record as evidence. */
export class HookFailed extends Halt {
  constructor(
    message: string,
    readonly results: HookResult[],
  ) {
    super('rolled-back', message, EXIT.rolledBack);
  }
}

/** The record keeps the last run of each hook: one entry per name, in policy order of first run. */
export function keepHookResults(kept: readonly HookResult[] | undefined, results: readonly HookResult[]): HookResult[] {
  const out = [...(kept ?? [])];
  for (const r of results) {
    const i = out.findIndex((k) => k.name === r.name);
    if (i >= 0) out[i] = r;
    else out.push(r);
  }
  return out;
}
