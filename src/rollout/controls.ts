// Operator controls in the rollout record (`canary promote|pause|resume`), as pure functions over
// the record: which controls are new, whether a conflicting save met only a control, whether a
// command's view of the rollout is stale, and what a control does to the rollout's gate.

import type { Control, ControlAck, ControlKind, ControlsState } from './control-types.js';
import { FINAL_PHASES, type RolloutRecord } from './record.js';

/** Controls kept in the record: enough for `status` to say who did what, bounded at any rate. */
export const MAX_CONTROLS = 20;
/** The longest reason (and identity) a control keeps: 20 of them stay far below the ConfigMap's 1 MiB. */
export const MAX_CONTROL_TEXT = 500;

const bounded = (text: string) => (text.length > MAX_CONTROL_TEXT ? `${text.slice(0, MAX_CONTROL_TEXT - 1)}…` : text);

const KIND_WORDS: Record<ControlKind, string> = {
  promote: 'promote',
  'promote-full': 'promote --full',
  pause: 'pause',
  resume: 'resume',
};

export function controlWords(kind: ControlKind): string {
  return KIND_WORDS[kind];
}

function stateOf(record: RolloutRecord): ControlsState {
  record.controls ??= { log: [] };
  return record.controls;
}

/** Appends a control; past MAX_CONTROLS the oldest answered ones go first, then the oldest. */
export function appendControl(record: RolloutRecord, control: Control): void {
  const state = stateOf(record);
  state.log.push(control);
  while (state.log.length > MAX_CONTROLS) {
    const answered = state.log.findIndex((c) => c.ack !== undefined);
    state.log.splice(answered >= 0 ? answered : 0, 1);
  }
}

export function pendingControls(record: RolloutRecord): Control[] {
  return (record.controls?.log ?? []).filter((c) => c.ack === undefined);
}

/**
 * True when `theirs` (what a conflicting save found) is this same rollout as a control command
 * leaves it: same id and driver, still running, no rollback or stop. Anything else is someone
 * else's stop or a takeover, and the save must fail as before.
 */
export function isControlWrite(ours: RolloutRecord, theirs: RolloutRecord): boolean {
  return (
    theirs.id === ours.id &&
    theirs.startedBy === ours.startedBy &&
    theirs.startedAt === ours.startedAt &&
    theirs.images.canary === ours.images.canary &&
    (theirs.resumedBy ?? null) === (ours.resumedBy ?? null) &&
    !FINAL_PHASES.includes(theirs.phase) &&
    theirs.phase !== 'rolling-back' &&
    theirs.rollback === undefined &&
    theirs.stop === undefined
  );
}

/**
 * Takes into `ours` the controls `theirs` holds that `ours` lacks (matched by id). The deploy is
 * the only writer of answers, so its own answers stand. Returns how many were taken.
 */
export function mergeControls(ours: RolloutRecord, theirs: RolloutRecord): number {
  const known = new Set((ours.controls?.log ?? []).map((c) => c.id));
  let taken = 0;
  for (const control of theirs.controls?.log ?? []) {
    if (known.has(control.id)) continue;
    // Written by someone else's client: bounded here too, so the record stays small whatever it wrote.
    const copy = structuredClone(control);
    copy.by = bounded(String(copy.by));
    if (copy.reason !== undefined) copy.reason = bounded(String(copy.reason));
    appendControl(ours, copy);
    taken += 1;
  }
  return taken;
}

/**
 * Why a command must not write this control into this record, or null when it may. `expected` is
 * the rollout the command's view was of (`--rollout`, or the record it first read).
 */
export function staleReason(record: RolloutRecord, kind: ControlKind, expected?: string): string | null {
  const words = controlWords(kind);
  if (expected !== undefined && record.id !== expected) {
    return `the record of ${record.target} now holds rollout ${record.id} (${record.phase}, started by ${record.startedBy}), not ${expected}: \`canary ${words}\` was issued against a view that is out of date, so nothing was written; look again with \`canary status ${record.target} -n ${record.namespace}\``;
  }
  if (FINAL_PHASES.includes(record.phase)) {
    return `rollout ${record.id} is already over (${record.phase}${record.outcome ? `: ${record.outcome.reason}` : ''}); \`canary ${words}\` acts only on a running rollout, so nothing was written`;
  }
  if (record.phase === 'rolling-back' || record.stop !== undefined || record.rollback !== undefined) {
    const why = record.rollback?.reason ?? record.stop?.reason ?? 'a stop is under way';
    return `rollout ${record.id} is stopping (${why}); a stopping rollout only goes to 0%, so \`canary ${words}\` was not written`;
  }
  if (record.phase === 'watching') {
    return `rollout ${record.id} is already promoted and under its post-promotion watch; \`canary ${words}\` acts on the steps only, so nothing was written (\`canary rollback\` sets stable back during the watch)`;
  }
  if (record.phase === 'promoting') {
    return `rollout ${record.id} is already promoting (past its last step, stable being updated to ${record.images.canary}); \`canary ${words}\` acts on the steps only, so nothing was written`;
  }
  return null;
}

export interface GateContext {
  rolloutId: string;
  at: string;
  weight: number;
  stepIndex: number;
}

function ack(ctx: GateContext, outcome: ControlAck['outcome'], message: string): ControlAck {
  return { at: ctx.at, outcome, message, weight: ctx.weight, stepIndex: ctx.stepIndex };
}

/**
 * Applies one control to the record's gate and answers it. A control for another rollout is
 * refused (the fence); `promote` also ends an operator's pause, as Argo Rollouts' promote does.
 */
export function applyControl(record: RolloutRecord, control: Control, ctx: GateContext): ControlAck {
  const state = stateOf(record);
  const at = `${ctx.weight}%`;
  let answer: ControlAck;
  if (control.rolloutId !== ctx.rolloutId) {
    answer = ack(ctx, 'refused', `refused: issued against rollout ${control.rolloutId}, but this deploy drives rollout ${ctx.rolloutId}; nothing changed`);
  } else if (control.kind === 'pause') {
    state.paused = { by: control.by, at: control.at, ...(control.reason !== undefined && { reason: control.reason }), acknowledgedAt: ctx.at };
    answer = ack(ctx, 'applied', `paused at ${at}; checks continue and a breach still rolls back; \`canary resume\` moves it forward again`);
  } else if (control.kind === 'resume') {
    const was = state.paused;
    delete state.paused;
    answer = ack(ctx, 'applied', was ? `resumed at ${at} (paused by ${was.by} since ${was.at}); it moves forward as its checks allow` : `was not paused; it keeps moving forward as its checks allow (at ${at})`);
  } else {
    const full = control.kind === 'promote-full';
    const unpaused = state.paused ? ` (ends the pause by ${state.paused.by})` : '';
    delete state.paused;
    state.promote = { full, by: control.by, at: control.at };
    answer = ack(
      ctx,
      'applied',
      full
        ? `promoting at the next check without a breach: the remaining steps are skipped, then the promotion${unpaused}`
        : `moving on from ${at} at the next check without a breach${unpaused}`,
    );
  }
  control.ack = answer;
  return answer;
}
