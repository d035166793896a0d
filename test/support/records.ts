import type { CheckRecord } from '../../src/analysis/types.js';
import { emptyTallies, keepCheck, RECORD_SCHEMA_VERSION, STOP_STATES, type OutcomeResult, type RolloutRecord, type StopState } from '../../src/rollout/record.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import { checkoutEngine } from './checkout-engine.js';
import { defaultPolicy } from './policies.js';
import { healthy, ScriptedMetrics } from './scripted-metrics.js';
import { START } from './times.js';

// Rollout records built by hand, for tests of what reads them (status, the store, the stop
// machine): one base a test changes only where its case differs, so a field added to the record
// is added here once.

/** A `checkout` rollout at 25% in its second step, started at START by "ci", with no checks yet. */
export function rolloutRecord(over: Partial<RolloutRecord> = {}): RolloutRecord {
  return {
    schemaVersion: 1,
    id: 'checkout-20260115T100000Z',
    target: 'checkout',
    namespace: 'shop',
    phase: 'progressing',
    stepIndex: 1,
    weight: 25,
    images: { stable: 'shop/checkout:1', canary: 'shop/checkout:2' },
    startedBy: 'ci',
    startedAt: new Date(START).toISOString(),
    updatedAt: new Date(START).toISOString(),
    policy: { name: 'default', source: 'policies/default.yaml', plannedChecks: 40, intervalMs: 60_000, steps: [] },
    steps: [],
    checks: [],
    ...over,
  };
}

/** Whether a stop left in `state` has got as far as `s` (each state implies all before it). */
export const stopReached =
  (state: StopState) =>
  (s: StopState): boolean =>
    STOP_STATES.indexOf(state) >= STOP_STATES.indexOf(s);

/** What a stop's requester asked for; what the record holds of it depends on the state reached. */
export interface StopAsked {
  requestedBy: string;
  reason: string;
  result: OutcomeResult;
  token: string;
  /** A stop during a promotion sets stable back to this image; absent for a forward stop. */
  restoreImage?: string;
  direction?: 'forward';
  /** The outcome once recorded: its exit code and where it says traffic is. */
  outcome: { exitCode: number; traffic: string };
}

/**
 * The record a stopper that crashed in `state` leaves, as the stop machine writes it: its stop
 * (with the 0% read once confirmed), the phase (stopping, or the result once recorded) and the
 * outcome once recorded. A 3-check `checkout` rollout started by "ci-1" at START; `over` sets
 * what the case's rollout had reached (step, weight, images, promotion, rollback, watch).
 */
export function stoppedRecord(state: StopState, asked: StopAsked, over: Partial<RolloutRecord> = {}): RolloutRecord {
  const reached = stopReached(state);
  const at = new Date(START).toISOString();
  const { outcome, restoreImage, direction, ...stop } = asked;
  return rolloutRecord({
    schemaVersion: RECORD_SCHEMA_VERSION,
    phase: reached('recorded') ? asked.result : direction === 'forward' ? 'promoting' : 'rolling-back',
    startedBy: 'ci-1',
    policy: { name: 'default', source: 'test', plannedChecks: 3, intervalMs: 60_000, steps: [{ weight: 25, durationMs: 60_000 }] },
    stop: {
      ...stop,
      state,
      requestedAt: at,
      updatedAt: at,
      ...(direction && { direction }),
      ...(restoreImage !== undefined && { restoreImage }),
      ...(reached('traffic-zero-confirmed') && { traffic: 'canary at 0%, all traffic on stable' }),
    },
    ...(reached('recorded') && { outcome: { result: asked.result, reason: asked.reason, at, ...outcome } }),
    ...over,
  });
}

/**
 * A one-step rollout at 10% that has run `checks` checks, each a copy of `template` with its own
 * index, kept as the engine keeps them (the last `historyLimit`), with tallies.
 */
export function recordWithChecks(checks: number, template: CheckRecord, historyLimit: number): RolloutRecord {
  const record = rolloutRecord({
    stepIndex: 0,
    weight: 10,
    startedBy: 'test',
    policy: { name: 'default', source: 'policies/default.yaml', plannedChecks: checks, intervalMs: 10_000, steps: [{ weight: 10, durationMs: checks * 10_000 }] },
    steps: [{ index: 0, weight: 10, startedAt: new Date(START).toISOString() }],
    tallies: emptyTallies(),
  });
  for (let i = 1; i <= checks; i += 1) keepCheck(record, { ...structuredClone(template), index: i }, historyLimit);
  return record;
}

/** A check as the shipped sequential policy records it (its 5th, healthy), for size figures. */
export async function realisticCheck(): Promise<CheckRecord> {
  let check: CheckRecord | undefined;
  const { engine } = checkoutEngine({
    policy: defaultPolicy(),
    metrics: new ScriptedMetrics(START, healthy),
    clock: new VirtualClock(START),
    onEvent: (e) => {
      if (e.type === 'check' && e.check.index === 5) check = e.check;
    },
  });
  await engine.run();
  if (!check) throw new Error('the default policy ran no 5th check');
  return check;
}
