import { EXIT } from '../errors.js';
import type { CommandContext } from './abort.js';
import type { CallBudget, Clock, StateStore, TrafficRouter, Workloads } from './ports.js';
import type { RolloutRecord, StopProgress, StopState } from './record.js';

// The words the stop machine (stop-machine.ts) and its claims (stop-claim.ts) share: its ports,
// who drives it (a Stopper), what is asked of it and what it reports.

// Long enough for a reason that quotes a PromQL query in full; short enough that a record stays far under 1 MiB.
const MAX_TEXT = 4000;
/** Every text the record's `stop` holds is bounded: the record must stay small whatever happened. */
export const bounded = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text);

export const iso = (clock: Clock) => new Date(clock.now()).toISOString();

/** A stop whose record now names another stopper (or another owner): this one does nothing more. */
export class StopLostError extends Error {
  /** Set when the record says an operator rolled back (no stop machine of theirs): the engine reports their abort. */
  operatorAbort?: string;
  constructor(readonly holder: string) {
    super(`the stop was taken on by ${holder}: this stopper does nothing more`);
    this.name = 'StopLostError';
  }
}

export interface StopMachinePorts {
  router: TrafficRouter;
  workloads: Workloads;
  store: StateStore;
  clock: Clock;
  /** The last transition: the deploy gives its Lease back, `canary rollback` deletes the one it saw. */
  release(budget: CallBudget): Promise<string>;
  /**
   * Told after each transition's write landed, before the next: the engine reports traffic at 0%
   * and opens its incidents once the stop is recorded (before the Lease goes).
   */
  onState?: (state: StopState, record: RolloutRecord) => void | Promise<void>;
}

export interface Stopper {
  /** Holder identity + epoch: what makes a stale stopper lose. */
  token: string;
  ctx: CommandContext;
  /** How long the first transition keeps trying (deploy: minutes; rollback: --timeout). */
  deadlineMs: number;
  callTimeoutMs: number;
  say?: (line: string) => void;
  /** Null while this stopper may write (a deploy: its Lease renewed within the renew deadline); else why not. */
  mayAct?: () => string | null;
  /** The stable Deployment's name, for the command that undoes a promotion by hand (default: the target). */
  stableDeployment?: string;
  /** The canary Deployment's name, for the lines that say what scaling it down found (default: <target>-canary). */
  canaryDeployment?: string;
  /** Set when this stopper's process lost the rollout (its Lease taken): names who has it; it then does nothing more. */
  takenBy?: () => string | null;
  /** Tokens of the same process that this stopper may take a stop from (a second signal over its own deploy's stop). */
  supersedes?: readonly string[];
  /** `canary rollback`: taking a stop on makes it the operator's (requester, reason, result 'aborted'). */
  asOperator?: { requestedBy: string; reason: string; /** The operator's own words, for record.rollback. */ why: string };
}

export interface StopRequest {
  requestedBy: string;
  reason: string;
  result: StopProgress['result'];
  direction?: 'forward';
  exitCode?: number;
  /** Who `record.rollback` names, when not the requester (the deploy's own stop: whoever started the rollout). */
  rollbackBy?: string;
}

/**
 * A stop whose first transition is the requester's own record: the engine asks with the record it
 * holds (unsaved checks included). Traffic goes to 0% before the record is written, so a record
 * that cannot be saved never delays the switch.
 */
export interface OwnRecord {
  /** The requester's record and the version of its last own save, as they are now. */
  current(): { record: RolloutRecord; version: string | null };
  /** Where the canary was last set, for a stop that cannot confirm 0% ("canary last set to 10%"). */
  lastSet: string;
}

export interface StopReport {
  /** The state reached; `released` is the only end. */
  state: StopState;
  /** A read showed every route of ours at 0%. */
  confirmed: boolean;
  traffic: string;
  record: RolloutRecord | null;
  /** The version of `record` as last saved by this stopper (absent when it saved nothing). */
  version?: string;
  /** Set when a newer stopper took the stop over: nothing more was done by this one. */
  lostTo?: string;
  /** The operator's abort the stop lost to, in the words the engine reports it. */
  operatorAbort?: string;
  exitCode: number;
}

export function exitFor(stop: Pick<StopProgress, 'result' | 'exitCode'>): number {
  if (stop.exitCode !== undefined) return stop.exitCode;
  if (stop.result === 'promoted') return EXIT.ok;
  if (stop.result === 'rolled-back') return EXIT.rolledBack;
  if (stop.result === 'aborted') return EXIT.aborted;
  if (stop.result === 'rolled-back-after-promotion') return EXIT.rolledBackAfterPromotion;
  return EXIT.unexpected;
}
