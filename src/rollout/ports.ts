import type { RolloutRecord } from './record.js';

// The engine's only view of the world. Live, dry-run, replay and backtest differ only in which
// adapters fill these ports; the engine itself does no I/O.

/**
 * One call on the stop path: a single attempt that must answer within `timeoutMs`. The abort
 * loops over such calls until its own deadline instead of letting one call's retries outlast it.
 */
export interface CallBudget {
  timeoutMs: number;
}

/** A canary route as a read found it. */
export interface RouteState {
  name: string;
  /** null when the weight annotation is missing or unreadable. */
  weight: number | null;
  /** Header/cookie routing still present: matching requests reach the canary at any weight. */
  overrides: string[];
}

export interface OwnRouteState extends RouteState {
  /** The stop marker: who stopped the rollout and when, null while raises are allowed. */
  stoppedBy: string | null;
  rolloutId: string | null;
}

/** Every route that can send traffic to the canary, as re-read from the cluster. */
export interface TrafficState {
  ours: OwnRouteState[];
  /** Canary routes we did not make that send traffic to the canary's Service: reported, never changed. */
  foreign: RouteState[];
}

/** True when no route of ours can send a request to the canary. */
export function oursAtZero(state: TrafficState): boolean {
  return state.ours.every((r) => (r.weight ?? 0) === 0 && r.overrides.length === 0);
}

/**
 * A weight change refused by the fence on the route itself: since the raiser last looked, a stop
 * was written (or another rollout prepared the route). The stop owns traffic now: do not touch it.
 */
export class StopRequestedError extends Error {
  constructor(
    readonly route: string,
    /** The stop marker found, or why the fence failed. */
    readonly by: string,
  ) {
    super(`the canary route ${route} was stopped (${by}) since this rollout last looked; traffic is left to that stop`);
    this.name = 'StopRequestedError';
  }
}

export interface TrafficRouter {
  /** Creates (or adopts our own) canary route at 0% so later weight changes are one patch each. */
  prepare(): Promise<void>;
  /**
   * Sets the weight of this rollout's route. Fenced: it lands only if the route still belongs to
   * this rollout and carries no stop marker; otherwise it throws StopRequestedError, unwritten.
   */
  setWeight(weight: number): Promise<void>;
  /** The weight actually in force, or null when no canary route of ours exists. */
  getWeight(): Promise<number | null>;
  /**
   * Every canary route of ours (whatever rollout made it) to 0 with the stop marker set and
   * header/cookie routing removed, one write per route that needs it. Routes we did not make are
   * left alone. Returns our routes as found before the write.
   */
  stop(marker: string, budget?: CallBudget): Promise<OwnRouteState[]>;
  /** Re-reads every route that can send traffic to the canary. */
  inspect(budget?: CallBudget): Promise<TrafficState>;
  /**
   * Throws StopRequestedError when this rollout no longer owns its route (a stop was written on
   * it, or another rollout prepared it): the check a write that changes stable is fenced by.
   */
  checkFence?(): Promise<void>;
  /**
   * Header routing on while the weight stays 0 (smoke tests before traffic), fenced like a raise.
   * Called only once the canary is ready; every stop removes it again with the weight.
   */
  routeByHeader?(): Promise<void>;
  /** A resumed run takes the route over from its predecessor (see IngressRouter.claim). */
  claim?(): Promise<void>;
}

/**
 * How a write to stable is tied to who may make it. `fence` is called after stable is read and
 * before it is written; the write carries the resourceVersion read before the fence check, so a
 * write delayed past a stop (which always writes stable, see `mark`) loses with a 409 and is
 * reported as lost (StopRequestedError), never retried. `mark` (a stop restoring stable) is
 * written on stable even when its image is already right, so that any promotion write read
 * before it loses.
 */
export interface StableWriteGuard {
  fence?: () => Promise<void>;
  mark?: string;
}

export interface StableStatus {
  available: boolean;
  message: string;
  /** False when nothing was looked at (a dry-run or a backtest has no cluster to ask). */
  verified?: false;
}

/** What scaling the canary down found: the one fact `canary rollback` reports. */
export type ScaleDownResult = 'scaled-to-zero' | 'already-zero' | 'not-found';

export interface Workloads {
  stableImage(): Promise<string | null>;
  /** Sets the canary image, scales the canary up and waits until it is ready. */
  startCanary(image: string): Promise<void>;
  /** Updates stable to the image and waits until it is fully available (also how a stop restores it). */
  promoteStable(image: string, guard?: StableWriteGuard): Promise<void>;
  /** Never called while a read does not show every route of ours at 0. */
  scaleDownCanary(budget?: CallBudget): Promise<ScaleDownResult>;
  verifyStable(budget?: CallBudget): Promise<StableStatus>;
}

/** The Lease as a stop saw it: who held it, and the exact version (the delete's precondition). */
export interface LeaseSeen {
  holder: string;
  resourceVersion: string;
  uid: string;
}

/**
 * The coordination Lease of a deploy that a stop ended: removed after a confirmed stop so the next
 * deploy can start at once, but only the lease the stop saw (see clear).
 */
export interface LeaseCleaner {
  /** The lease now (read once the stop has begun, before it is recorded); null when there is none. */
  observe(budget?: CallBudget): Promise<LeaseSeen | null>;
  /**
   * Deletes the lease only if it is still exactly the one `seen` (resourceVersion and uid as
   * preconditions): a lease renewed since (its deploy is alive and has seen the stop) or taken by
   * a deploy that started after the stop is kept, naming its holder.
   */
  clear(seen: LeaseSeen | null, budget?: CallBudget): Promise<{ result: 'deleted' | 'absent' } | { result: 'kept'; holder: string }>;
}

export interface StoredRecord {
  record: RolloutRecord;
  version: string;
}

export class StateConflictError extends Error {
  constructor(readonly current: StoredRecord | null) {
    super('the rollout record was changed by someone else');
    this.name = 'StateConflictError';
  }
}

export interface StateStore {
  load(): Promise<StoredRecord | null>;
  /** Writes if the stored version still equals `expectedVersion` (null: must not exist yet). */
  save(record: RolloutRecord, expectedVersion: string | null): Promise<string>;
}

export interface Clock {
  now(): number;
  /** Resolves after ms, or early (without throwing) when the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface IncidentResult {
  sink: string;
  ok: boolean;
  url?: string;
  message: string;
}

export interface IncidentSink {
  readonly name: string;
  open(record: RolloutRecord): Promise<IncidentResult>;
}
