import type { RolloutRecord } from './record.js';

// The engine's only view of the world. Live, dry-run, replay and backtest differ only in which
// adapters fill these ports; the engine itself does no I/O.

export interface TrafficRouter {
  /** Creates (or adopts our own) canary route at 0% so later weight changes are one patch each. */
  prepare(): Promise<void>;
  setWeight(weight: number): Promise<void>;
  /** The weight actually in force, or null when no canary route of ours exists. */
  getWeight(): Promise<number | null>;
}

export interface StableStatus {
  available: boolean;
  message: string;
  /** False when nothing was looked at (a dry-run or a backtest has no cluster to ask). */
  verified?: false;
}

export interface Workloads {
  stableImage(): Promise<string | null>;
  /** Sets the canary image, scales the canary up and waits until it is ready. */
  startCanary(image: string): Promise<void>;
  /** Updates stable to the image and waits until it is fully available. */
  promoteStable(image: string): Promise<void>;
  scaleDownCanary(): Promise<void>;
  verifyStable(): Promise<StableStatus>;
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
