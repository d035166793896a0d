// The command side of an operator control (`canary promote|pause|resume`): one conditional write
// of the control into the cluster-held record, fenced by the rollout the command saw, then a
// bounded wait for the running deploy's answer. Over the StateStore port, so it is the same code
// against a ConfigMap or in memory.

import { randomBytes } from 'node:crypto';
import type { Control, ControlAck, ControlKind } from './control-types.js';
import { appendControl, staleReason } from './controls.js';
import { StateConflictError, type Clock, type StateStore } from './ports.js';
import { FINAL_PHASES, type RolloutRecord } from './record.js';

/** Writes in a row that may lose to the deploy's own saves before the command gives up. */
const MAX_WRITE_TRIES = 8;

export interface IssueRequest {
  kind: ControlKind;
  by: string;
  reason?: string;
  /** `--rollout`: the rollout the operator means; without it, the one the first read shows. */
  rolloutId?: string;
  now: () => string;
}

export type IssueResult =
  | { kind: 'written'; control: Control; record: RolloutRecord; version: string }
  | { kind: 'refused'; message: string; record: RolloutRecord | null };

function newControlId(kind: ControlKind, at: string): string {
  return `${kind}-${at.replace(/[^0-9]/g, '').slice(0, 14)}-${randomBytes(4).toString('hex')}`;
}

/**
 * Writes the control with the record's resourceVersion as precondition. A write that loses to
 * the deploy's own save reads again and retries, but only while the record still holds the
 * rollout first seen and that rollout can still take it: a view gone stale is refused, never
 * applied to whatever rollout the record holds now.
 */
export async function issueControl(store: StateStore, request: IssueRequest): Promise<IssueResult> {
  let stored = await store.load();
  if (!stored) return { kind: 'refused', message: 'there is no rollout record', record: null };
  const seen = request.rolloutId ?? stored.record.id;
  for (let tries = 1; ; tries += 1) {
    const stale = staleReason(stored.record, request.kind, seen);
    if (stale) return { kind: 'refused', message: stale, record: stored.record };
    const at = request.now();
    const control: Control = {
      id: newControlId(request.kind, at),
      kind: request.kind,
      by: request.by,
      at,
      rolloutId: seen,
      ...(request.reason !== undefined && { reason: request.reason }),
    };
    const record = structuredClone(stored.record);
    appendControl(record, control);
    try {
      const version = await store.save(record, stored.version);
      return { kind: 'written', control, record, version };
    } catch (err) {
      if (!(err instanceof StateConflictError) || tries >= MAX_WRITE_TRIES) throw err;
      if (!err.current) return { kind: 'refused', message: 'the rollout record was deleted or became unreadable while the control was written; nothing was written', record: null };
      stored = err.current;
    }
  }
}

export type AckResult =
  | { kind: 'acknowledged'; ack: ControlAck; record: RolloutRecord }
  /** The rollout ended, stopped or was replaced before answering: the control was not acted on. */
  | { kind: 'ended'; message: string; record: RolloutRecord | null }
  | { kind: 'timeout'; record: RolloutRecord | null };

export interface AwaitOptions {
  timeoutMs: number;
  pollMs: number;
  clock: Clock;
  signal?: AbortSignal;
}

/** Reads the record until the deploy answers the control, the rollout ends, or the timeout passes. */
export async function awaitAck(store: StateStore, control: Control, opts: AwaitOptions): Promise<AckResult> {
  const deadline = opts.clock.now() + opts.timeoutMs;
  let last: RolloutRecord | null = null;
  for (;;) {
    const stored = await store.load();
    last = stored?.record ?? null;
    if (!last || last.id !== control.rolloutId) {
      return { kind: 'ended', message: last ? `the record now holds another rollout (${last.id}): the control was not acted on` : 'the rollout record is gone: the control was not acted on', record: last };
    }
    const mine = last.controls?.log.find((c) => c.id === control.id);
    if (mine?.ack) return { kind: 'acknowledged', ack: mine.ack, record: last };
    if (FINAL_PHASES.includes(last.phase) || last.phase === 'rolling-back' || last.stop !== undefined || last.rollback !== undefined) {
      const why = last.outcome ? `${last.outcome.result}: ${last.outcome.reason}` : (last.rollback?.reason ?? last.stop?.reason ?? last.phase);
      return { kind: 'ended', message: `rollout ${last.id} stopped before acting on it (${why}); nothing was raised for it`, record: last };
    }
    if (last.phase === 'promoting' || last.phase === 'watching') {
      return { kind: 'ended', message: `rollout ${last.id} reached its promotion before acting on it; nothing was changed for it`, record: last };
    }
    if (opts.clock.now() >= deadline || opts.signal?.aborted) return { kind: 'timeout', record: last };
    await opts.clock.sleep(Math.min(opts.pollMs, Math.max(0, deadline - opts.clock.now())), opts.signal);
  }
}
