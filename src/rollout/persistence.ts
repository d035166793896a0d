// The rollout engine, room by room (see engine.ts): its state, the record and how it is saved.

import { Analyzer } from '../analysis/analyzer.js';
import { queryTargetOf } from '../analysis/promql-template.js';
import type { CheckRecord, MetricsSource } from '../analysis/types.js';
import { CanaryError, EXIT, messageOf } from '../errors.js';
import { type Policy, type TargetNames } from '../policy/policy.js';
import type { Reporter, RolloutEvent } from './events.js';
import type { CommandContext } from './abort.js';
import { StateConflictError, StopRequestedError, type Clock, type IncidentSink, type StateStore, type TrafficRouter, type Workloads } from './ports.js';
import { countVerdict, emptyCounts, emptyTallies, FINAL_PHASES, type CheckTallies, type Phase, type RolloutRecord } from './record.js';
import { Halt } from './halt.js';
import { isControlWrite, mergeControls } from './controls.js';
import type { SmokeTester } from './smoke-tests.js';
import type { HookRunner } from './hooks.js';

/** Saves in a row that may meet a new control (each one an operator's command) before one fails. */
const MAX_CONTROL_MERGES = 10;

export interface EnginePorts {
  router: TrafficRouter;
  workloads: Workloads;
  metrics: MetricsSource;
  state: StateStore;
  incidents: IncidentSink[];
  /** Sends the policy's smoke tests to the canary; absent in a dry-run, a replay, a backtest. */
  smoke?: SmokeTester;
  /** Runs the policy's hooks (spec.hooks); absent in a dry-run, a replay, a backtest. */
  hooks?: HookRunner;
}

export interface EngineOptions {
  policy: Policy;
  target: string;
  namespace: string;
  names: TargetNames;
  image: string;
  startedBy: string;
  /** `--retry`: the id of the rolled-back or aborted rollout this one starts again. */
  retryOf?: string;
  /** Defaults to `<target>-<start time>`; live deploys pass it so the canary Ingress can carry it. */
  rolloutId?: string;
  ports: EnginePorts;
  clock: Clock;
  reporter: Reporter;
  /** Aborts the rollout (SIGTERM/SIGINT of a cancelled CI job). */
  signal?: AbortSignal;
  onCancel?: 'rollback' | 'leave';
  /** The stop path's deadline and per-call bound, and the workloads it uses (no cancellation signal). */
  stop?: {
    deadlineMs?: number;
    callTimeoutMs?: number;
    workloads?: Workloads;
    /** This process's fence token (Lease holder + epoch): what it writes as the stopper in `record.stop`. */
    token?: string;
    /** Gives this deploy's Lease back: the stop machine's last transition when it takes a stop on. */
    release?: () => Promise<string>;
    /** Null while this deploy may still write (its Lease renewed within the renew deadline); else why not. */
    mayAct?: () => string | null;
  };
  /** Context, kubeconfig and policy file, so every printed hint works pasted as is. */
  commands?: Omit<CommandContext, 'target' | 'namespace'>;
  /**
   * How far each check's query time lags its tick (analysis.evaluationDelay), for scrape and
   * ingestion lag. Live rollouts only: replays and backtests ask for exactly the recorded times.
   */
  evaluationDelayMs?: number;
}

/**
 * The engine's state and the moves every room makes: the record and its saves (a conflict is
 * someone else's stop or a takeover), tallies, the fenced weight change, cancellation.
 */
export abstract class EngineCore {
  protected record!: RolloutRecord;
  /** Set once the record exists; until then there is nothing to record on a forced exit. */
  protected hasRecord = false;
  protected version: string | null = null;
  protected weight = 0;
  protected readonly analyzer: Analyzer;
  protected failures = 0;
  protected inconclusiveRun = 0;
  /** False until the canary route exists: before that there is no traffic to send back. */
  protected routed = false;
  /** A weight asked for whose write has not been confirmed: it may or may not be in force. */
  protected inFlightWeight: number | null = null;
  /** Set when a save found that an operator rolled back: their abort wins over ours. */
  protected operatorAbort: string | null = null;
  /** Set once stable runs the new image and is available: a stop then finishes the promotion. */
  protected pastNoReturn = false;
  /**
   * False while a stop could not confirm 0% by a read: the deploy's Lease must then stay until
   * it expires (or `canary rollback` deletes it), so no new deploy starts on top of live traffic.
   */
  trafficSafe = true;

  constructor(protected readonly opts: EngineOptions) {
    const { policy, names, namespace } = opts;
    this.analyzer = new Analyzer(
      policy,
      queryTargetOf(namespace, names),
      opts.ports.metrics,
    );
  }

  protected now(): number {
    return this.opts.clock.now();
  }

  protected get ctx(): CommandContext {
    return { ...this.opts.commands, target: this.opts.target, namespace: this.opts.namespace };
  }

  protected iso(): string {
    return new Date(this.now()).toISOString();
  }

  protected emit(event: RolloutEvent): void {
    this.opts.reporter.emit(event);
  }

  protected log(level: 'info' | 'warn' | 'error', message: string): void {
    this.emit({ type: 'log', at: this.now(), level, message });
  }

  /**
   * Failure and inconclusive runs as the record's tallies left them, so limits survive a restart
   * and the trimming of old checks. A record written before tallies existed kept every check.
   */
  protected restoreCounters(): void {
    const kept = this.record.tallies;
    if (kept) {
      this.failures = kept.failures;
      this.inconclusiveRun = kept.inconclusiveRun;
      return;
    }
    this.record.tallies = emptyTallies();
    for (const check of this.record.checks) this.tally(check.verdict, check.stepIndex);
  }

  protected get tallies(): CheckTallies {
    this.record.tallies ??= emptyTallies();
    return this.record.tallies;
  }

  /** Pending (evidence accumulating, traffic flowing) is neither a failure nor missing data. */
  protected tally(verdict: CheckRecord['verdict'], stepIndex: number): void {
    const tallies = this.tallies;
    countVerdict(tallies, verdict);
    const step = (tallies.byStep[stepIndex] ??= emptyCounts());
    countVerdict(step, verdict);
    for (let i = 0; i < stepIndex; i += 1) tallies.byStep[i] ??= emptyCounts();
    this.countLimits(verdict);
    tallies.failures = this.failures;
    tallies.inconclusiveRun = this.inconclusiveRun;
  }

  protected countLimits(verdict: CheckRecord['verdict']): void {
    if (verdict === 'fail') {
      this.failures += 1;
      this.inconclusiveRun = 0;
    } else if (verdict === 'inconclusive') {
      this.inconclusiveRun += 1;
    } else if (verdict === 'pending') {
      this.inconclusiveRun = 0;
    } else {
      this.inconclusiveRun = 0;
      if (this.opts.policy.analysis.countFailures === 'consecutive') this.failures = 0;
    }
  }

  protected asHalt(err: unknown): Halt {
    if (err instanceof Halt) return err;
    // A wait that stopped because of a cancellation is that cancellation, not a failure.
    const cancelled = this.cancellation();
    if (cancelled) return cancelled;
    if (err instanceof CanaryError) return new Halt('failed', messageOf(err), err.exitCode);
    return new Halt('failed', `unexpected error: ${messageOf(err)}`, EXIT.unexpected);
  }

  /**
   * A plain abort is a cancellation (SIGTERM/SIGINT); an abort whose reason is a CanaryError (the
   * lease was lost) is a failure, and traffic goes to stable whatever --on-cancel says.
   */
  protected cancellation(): Halt | null {
    const signal = this.opts.signal;
    if (!signal?.aborted) return null;
    if (signal.reason instanceof CanaryError) {
      const takenOver = signal.reason.kind === 'taken-over';
      return new Halt(takenOver ? 'aborted' : 'failed', messageOf(signal.reason), signal.reason.exitCode, false, takenOver);
    }
    return new Halt('aborted', 'cancelled', EXIT.aborted);
  }

  protected throwIfCancelled(): void {
    const halt = this.cancellation();
    if (halt) throw halt;
  }

  protected setPhase(phase: Phase, message: string): void {
    this.record.phase = phase;
    this.emit({ type: 'phase', at: this.now(), phase, message });
  }

  protected async setWeight(weight: number, why: string): Promise<void> {
    this.inFlightWeight = weight;
    try {
      await this.opts.ports.router.setWeight(weight);
    } catch (err) {
      if (!(err instanceof StopRequestedError)) throw err;
      this.inFlightWeight = null;
      throw this.fencedOut(err);
    }
    this.inFlightWeight = null;
    this.weight = weight;
    this.record.weight = weight;
    this.emit({ type: 'traffic', at: this.now(), weight, message: why });
  }

  /**
   * A fenced write to the route refused: a stop landed (or another rollout or process took the
   * route) since we last looked. It owns traffic now; nothing of ours was written.
   */
  protected fencedOut(err: StopRequestedError): Halt {
    if (err.by.startsWith('it now belongs to')) {
      return new Halt('aborted', `the canary route was taken over (${err.by}): that rollout drives traffic now, so this one stops without touching it`, EXIT.aborted, false, true);
    }
    return new Halt('aborted', `rolled back by an operator (stop written on the canary route: ${err.by})`, EXIT.aborted, true);
  }

  /**
   * Saves the record. A conflict that met only an operator's control (`canary promote|pause|
   * resume` written since our last read) takes the control in and saves again, so no control is
   * lost; any other conflict is someone else's stop or a takeover.
   */
  protected async persist(): Promise<void> {
    this.record.updatedAt = this.iso();
    const judge = this.analyzer.snapshot();
    if (Object.keys(judge).length > 0) this.record.judge = judge;
    for (let merged = 0; ; merged += 1) {
      try {
        this.version = await this.opts.ports.state.save(this.record, this.version);
        return;
      } catch (err) {
        const current = err instanceof StateConflictError ? err.current : null;
        if (current && merged < MAX_CONTROL_MERGES && isControlWrite(this.record, current.record)) {
          mergeControls(this.record, current.record);
          this.version = current.version;
          continue;
        }
        this.conflicted(err);
      }
    }
  }

  /** A save that conflicted with something other than a control: whose stop or takeover it was. */
  private conflicted(err: unknown): never {
    if (!(err instanceof StateConflictError)) throw err;
    const theirs = err.current?.record;
    if (theirs?.rollback || (theirs && FINAL_PHASES.includes(theirs.phase))) {
      this.version = err.current?.version ?? this.version;
      if (theirs.rollback) this.record.rollback = theirs.rollback;
      const by = theirs.rollback ? ` by ${theirs.rollback.requestedBy}: ${theirs.rollback.reason}` : '';
      this.operatorAbort = `rolled back by an operator${by}`;
      throw new Halt('aborted', this.operatorAbort, EXIT.aborted, true);
    }
    // Someone else's rollout now (a --resume from another machine after our lease expired).
    const who = theirs ? ` (now ${theirs.phase}, started by ${theirs.startedBy})` : '';
    throw new Halt('aborted', `the rollout record was changed by another process${who}: that process now drives the rollout, so this one stops without touching traffic`, EXIT.aborted, false, true);
  }

  /**
   * Best effort: a failed write must never stand between the canary and 0%. A save that found
   * the rollout taken over (or stopped by an operator) is not a failed write: it says who owns
   * the rollout now, so it is returned for the caller to act on, never swallowed.
   */
  protected async persistQuietly(): Promise<Halt | null> {
    try {
      await this.persist();
      return null;
    } catch (err) {
      if (err instanceof Halt) return err;
      this.log('warn', `could not save the rollout record: ${messageOf(err)}`);
      return null;
    }
  }
}
