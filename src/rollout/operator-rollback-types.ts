import type { Policy, TargetNames } from '../policy/policy.js';
import type { CommandContext } from './abort.js';
import type { Clock, IncidentResult, LeaseCleaner, OwnRouteState, StableStatus, StoredRecord, TrafficRouter, Workloads } from './ports.js';
import type { OutcomeResult, RolloutRecord } from './record.js';

// `canary rollback`'s use case, in types: its ports, its options, and what it reports.

/** What reading the record found; a corrupt record is overwritten (only once traffic is at 0). */
export type RecordRead = { kind: 'found'; stored: StoredRecord } | { kind: 'missing' } | { kind: 'corrupt'; why: string; version: string };

export interface OperatorRollbackPorts {
  router: TrafficRouter;
  workloads: Workloads;
  loadRecord(): Promise<RecordRead>;
  saveRecord(record: RolloutRecord, expectedVersion: string | null): Promise<string>;
  lease: LeaseCleaner;
  /** A Kubernetes Event on the stable Deployment; best effort, resolves to why it failed. */
  event(reason: string, message: string): Promise<string | undefined>;
  /** Loaded only after traffic is at 0: building sinks (secrets, modules) never delays the switch. */
  openIncidents(record: RolloutRecord): Promise<IncidentResult[]>;
}

export interface OperatorRollbackOptions {
  ctx: CommandContext;
  names: TargetNames;
  policy: Pick<Policy, 'name' | 'source' | 'intervalMs' | 'steps'>;
  reason: string;
  requestedBy: string;
  clock: Clock;
  deadlineMs: number;
  callTimeoutMs: number;
  incidents: boolean;
  /** Our routes as an earlier 0% write of this command found them (the CLI writes once before loading the rest). */
  firstFound?: OwnRouteState[];
  /** Every line for the operator, as it happens. */
  say(line: string): void;
}

export interface RollbackReport {
  target: string;
  namespace: string;
  /** aborted (this command stopped it), or the earlier result when it was already over. */
  result: OutcomeResult | 'nothing-to-roll-back';
  actions: string[];
  /** Where traffic is, from the last read. */
  traffic: string;
  /** Every canary Ingress of ours, as re-read after the stop. */
  ingresses: { name: string; weight: number }[];
  /** Canary Ingresses we did not make that send traffic to the canary; left alone. */
  foreign: { name: string; weight: number | null }[];
  stable: StableStatus | null;
  alreadyRolledBack: boolean;
  incidentUrl: string | null;
  record: RolloutRecord | null;
  exitCode: number;
}

