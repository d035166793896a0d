import { Analyzer } from '../analysis/analyzer.js';
import type { CheckRecord, CheckResult, MetricsSource } from '../analysis/types.js';
import { CanaryError, EXIT, type ExitCode, messageOf } from '../errors.js';
import { plannedChecks, type Policy, type TargetNames } from '../policy/policy.js';
import type { Reporter, RolloutEvent } from './events.js';
import { DEFAULT_DEPLOY_STOP_DEADLINE_MS, describeTraffic, finishStop, resumeHint, rollbackHint, stopTraffic, type CommandContext } from './abort.js';
import {
  StateConflictError,
  StopRequestedError,
  type Clock,
  type IncidentSink,
  type StateStore,
  type StoredRecord,
  type TrafficRouter,
  type Workloads,
} from './ports.js';
import { rolloutIdFor } from './rollout-id.js';
import {
  countsOf,
  countVerdict,
  emptyCounts,
  emptyTallies,
  FINAL_PHASES,
  keepCheck,
  RECORD_SCHEMA_VERSION,
  type CheckCounts,
  type CheckTallies,
  type Outcome,
  type OutcomeResult,
  type Phase,
  type RolloutRecord,
} from './record.js';

export interface EnginePorts {
  router: TrafficRouter;
  workloads: Workloads;
  metrics: MetricsSource;
  state: StateStore;
  incidents: IncidentSink[];
}

export interface EngineOptions {
  policy: Policy;
  target: string;
  namespace: string;
  names: TargetNames;
  image: string;
  startedBy: string;
  /** Defaults to `<target>-<start time>`; live deploys pass it so the canary Ingress can carry it. */
  rolloutId?: string;
  ports: EnginePorts;
  clock: Clock;
  reporter: Reporter;
  /** Aborts the rollout (SIGTERM/SIGINT of a cancelled CI job). */
  signal?: AbortSignal;
  onCancel?: 'rollback' | 'leave';
  /** The stop path's deadline and per-call bound, and the workloads it uses (no cancellation signal). */
  stop?: { deadlineMs?: number; callTimeoutMs?: number; workloads?: Workloads };
  /** Context, kubeconfig and policy file, so every printed hint works pasted as is. */
  commands?: Omit<CommandContext, 'target' | 'namespace'>;
  /**
   * How far each check's query time lags its tick (analysis.evaluationDelay), for scrape and
   * ingestion lag. Live rollouts only: replays and backtests ask for exactly the recorded times.
   */
  evaluationDelayMs?: number;
}

export { rolloutIdFor } from './rollout-id.js';

/** Ends the rollout early; the message is the reason recorded and shown to operators. */
class Halt extends Error {
  constructor(
    readonly result: Exclude<OutcomeResult, 'promoted'>,
    message: string,
    readonly exitCode: ExitCode,
    /** Set when someone else already rolled back: traffic is theirs to move, but we still make sure it is 0. */
    readonly byOperator = false,
    /** Set when another deploy took the rollout over: traffic, record and canary are theirs now. */
    readonly takenOver = false,
  ) {
    super(message);
  }
}

/** Why analysis ended the rollout, phrased from the results that decided it. */
function failureReason(results: readonly CheckResult[]): string {
  const failing = results.filter((r) => r.critical && r.verdict === 'fail');
  return failing.map((r) => `${r.metric}: ${r.reason}`).join('; ');
}

function inconclusiveReason(results: readonly CheckResult[], run: number): string {
  const why = [...new Set(results.filter((r) => r.critical && r.verdict === 'inconclusive').map((r) => r.reason))];
  return `${run} checks in a row were inconclusive (${why.join('; ')}); a canary that cannot be judged is not promoted`;
}

/** "all 40 checks passed", or each verdict counted as what it was. */
export function promotionReason(counts: CheckCounts): string {
  if (counts.passed === counts.run) return `all ${counts.run} checks passed`;
  const parts = [`${counts.passed} passed`];
  if (counts.pending) parts.push(`${counts.pending} still gathering evidence`);
  if (counts.inconclusive) parts.push(`${counts.inconclusive} inconclusive`);
  const other = counts.run - counts.passed - counts.pending - counts.inconclusive - counts.failed;
  if (counts.failed) parts.push(`${counts.failed} failed`);
  if (other > 0) parts.push(`${other} advisory only`);
  return `no regression found in ${counts.run} checks (${parts.join(', ')})`;
}

/**
 * Check times on absolute ticks: tick k is at start + k × interval. A check that runs past the
 * next tick skips to the first tick still ahead, rather than firing late checks back to back.
 */
export class TickSchedule {
  /** The number of the next tick (1-based). */
  tick = 1;

  constructor(
    readonly start: number,
    readonly intervalMs: number,
  ) {}

  get next(): number {
    return this.start + this.tick * this.intervalMs;
  }

  /** Moves on to the next tick, or past `now` when the check overran it; returns how many ticks were skipped. */
  advance(now: number): number {
    const following = this.tick + 1;
    // A check that ended exactly on the following tick has not overrun it.
    this.tick = now > this.start + following * this.intervalMs ? Math.floor((now - this.start) / this.intervalMs) + 1 : following;
    return this.tick - following;
  }
}

/**
 * The rollout state machine. It only talks to ports, so the same code drives a live cluster, a
 * dry-run, a replay and a backtest. Traffic safety comes first on every exit path: whatever
 * goes wrong, the canary is sent to 0% before anything else is attempted.
 */
export class RolloutEngine {
  private record!: RolloutRecord;
  /** Set once the record exists; until then there is nothing to record on a forced exit. */
  private hasRecord = false;
  private version: string | null = null;
  private weight = 0;
  private readonly analyzer: Analyzer;
  private failures = 0;
  private inconclusiveRun = 0;
  /** False until the canary route exists: before that there is no traffic to send back. */
  private routed = false;
  /** A weight asked for whose write has not been confirmed: it may or may not be in force. */
  private inFlightWeight: number | null = null;
  /** Set when a save found that an operator rolled back: their abort wins over ours. */
  private operatorAbort: string | null = null;
  /** Set when a save during the stop found the rollout taken over: nothing more is ours to do. */
  private takenOverInStop = false;
  /** Set once stable runs the new image and is available: a stop then finishes the promotion. */
  private pastNoReturn = false;
  /** Set once promotion has started changing the stable Deployment. */
  private stablePatched = false;
  /**
   * False while a stop could not confirm 0% by a read: the deploy's Lease must then stay until
   * it expires (or `canary rollback` deletes it), so no new deploy starts on top of live traffic.
   */
  trafficSafe = true;

  constructor(private readonly opts: EngineOptions) {
    const { policy, names, namespace } = opts;
    this.analyzer = new Analyzer(
      policy,
      {
        namespace,
        ingress: names.stableIngress,
        stableService: names.stableService,
        canaryService: names.canaryService,
        stableDeployment: names.stableDeployment,
        canaryDeployment: names.canaryDeployment,
      },
      opts.ports.metrics,
    );
  }

  private now(): number {
    return this.opts.clock.now();
  }

  private get ctx(): CommandContext {
    return { ...this.opts.commands, target: this.opts.target, namespace: this.opts.namespace };
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private emit(event: RolloutEvent): void {
    this.opts.reporter.emit(event);
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.emit({ type: 'log', at: this.now(), level, message });
  }

  /**
   * Runs the rollout to its end. With `resume`, continues a record whose deploy died: the
   * recorded step starts over (its checks are kept in the record), a promotion is redone, and a
   * rollback in progress is finished; all of these are idempotent against the cluster.
   */
  async run(resume?: StoredRecord): Promise<Outcome> {
    const { policy } = this.opts;
    try {
      const first = resume ? await this.resumeFrom(resume) : await this.start();
      for (let i = first; i < policy.steps.length; i += 1) await this.runStep(i);
      return await this.promote(resume?.record.phase === 'promoting');
    } catch (err) {
      return this.halt(this.asHalt(err));
    }
  }

  private async resumeFrom(stored: StoredRecord): Promise<number> {
    const { policy, ports } = this.opts;
    this.record = stored.record;
    this.hasRecord = true;
    this.version = stored.version;
    this.weight = stored.record.weight;
    this.routed = true;
    // A promotion past routing-to-canary may have changed stable: a stop must set it back.
    this.stablePatched = stored.record.promotion !== undefined && stored.record.promotion !== 'routing-to-canary';
    this.restoreCounters();
    if (stored.record.judge) this.analyzer.restore(stored.record.judge);
    // The record and its Events name the run that drives the rollout now; startedBy stays who began it.
    this.record.resumedBy = this.opts.startedBy;
    this.emit({ type: 'started', at: this.now(), record: this.record, resumed: true });
    this.log('info', `resuming rollout ${this.record.id} from phase ${this.record.phase}, step ${this.record.stepIndex + 1} at ${this.record.weight}%`);
    if (this.record.phase === 'rolling-back') {
      throw new Halt('rolled-back', this.record.rollback?.reason ?? 'rollback interrupted before it finished', EXIT.rolledBack);
    }
    // From here this process drives the route: its predecessor's raises lose their fence test.
    if (this.record.phase !== 'initializing') {
      await ports.router.claim?.().catch((err: unknown) => {
        if (!(err instanceof StopRequestedError)) throw err;
        throw new Halt('aborted', `the canary route was taken over (${err.by}): that rollout drives traffic now, so this one stops without touching it`, EXIT.aborted, false, true);
      });
    }
    if (this.record.phase === 'promoting') return policy.steps.length;
    if (this.record.phase === 'initializing') {
      await ports.router.prepare();
      await ports.workloads.startCanary(this.opts.image);
      return 0;
    }
    return Math.min(this.record.stepIndex, policy.steps.length);
  }

  /**
   * Failure and inconclusive runs as the record's tallies left them, so limits survive a restart
   * and the trimming of old checks. A record written before tallies existed kept every check.
   */
  private restoreCounters(): void {
    const kept = this.record.tallies;
    if (kept) {
      this.failures = kept.failures;
      this.inconclusiveRun = kept.inconclusiveRun;
      return;
    }
    this.record.tallies = emptyTallies();
    for (const check of this.record.checks) this.tally(check.verdict, check.stepIndex);
  }

  private get tallies(): CheckTallies {
    this.record.tallies ??= emptyTallies();
    return this.record.tallies;
  }

  /** Pending (evidence accumulating, traffic flowing) is neither a failure nor missing data. */
  private tally(verdict: CheckRecord['verdict'], stepIndex: number): void {
    const tallies = this.tallies;
    countVerdict(tallies, verdict);
    const step = (tallies.byStep[stepIndex] ??= emptyCounts());
    countVerdict(step, verdict);
    for (let i = 0; i < stepIndex; i += 1) tallies.byStep[i] ??= emptyCounts();
    this.countLimits(verdict);
    tallies.failures = this.failures;
    tallies.inconclusiveRun = this.inconclusiveRun;
  }

  private countLimits(verdict: CheckRecord['verdict']): void {
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

  private asHalt(err: unknown): Halt {
    if (err instanceof Halt) return err;
    // A wait that stopped because of a cancellation is that cancellation, not a failure.
    const cancelled = this.cancellation();
    if (cancelled) return cancelled;
    if (err instanceof CanaryError) return new Halt('failed', messageOf(err), err.exitCode);
    return new Halt('failed', `unexpected error: ${messageOf(err)}`, EXIT.unexpected);
  }

  private async start(): Promise<number> {
    const { policy, ports, image } = this.opts;
    const startedAt = this.iso();
    this.record = {
      schemaVersion: RECORD_SCHEMA_VERSION,
      id: this.opts.rolloutId ?? rolloutIdFor(this.opts.target, this.now()),
      target: this.opts.target,
      namespace: this.opts.namespace,
      phase: 'initializing',
      stepIndex: 0,
      weight: 0,
      images: { stable: null, canary: image },
      startedBy: this.opts.startedBy,
      startedAt,
      updatedAt: startedAt,
      policy: { name: policy.name, source: policy.source, plannedChecks: plannedChecks(policy), intervalMs: policy.intervalMs, steps: policy.steps },
      steps: [],
      checks: [],
      tallies: emptyTallies(),
    };
    this.hasRecord = true;
    const stableImage = await ports.workloads.stableImage();
    this.record.images.stable = stableImage;
    const existing = await ports.state.load();
    this.version = existing?.version ?? null;
    await this.persist();
    this.emit({ type: 'started', at: this.now(), record: this.record, resumed: false });
    this.setPhase('initializing', `starting canary ${image}${stableImage ? ` against stable ${stableImage}` : ''}`);
    this.routed = true;
    await ports.router.prepare();
    await ports.workloads.startCanary(image);
    this.throwIfCancelled();
    return 0;
  }

  private setPhase(phase: Phase, message: string): void {
    this.record.phase = phase;
    this.emit({ type: 'phase', at: this.now(), phase, message });
  }

  private async setWeight(weight: number, why: string): Promise<void> {
    this.inFlightWeight = weight;
    try {
      await this.opts.ports.router.setWeight(weight);
    } catch (err) {
      if (!(err instanceof StopRequestedError)) throw err;
      // The fence on the route refused the write: a stop landed since we last looked. It owns
      // traffic now; nothing of ours was written.
      this.inFlightWeight = null;
      if (err.by.startsWith('it now belongs to')) {
        throw new Halt('aborted', `the canary route was taken over (${err.by}): that rollout drives traffic now, so this one stops without touching it`, EXIT.aborted, false, true);
      }
      throw new Halt('aborted', `rolled back by an operator (stop written on the canary route: ${err.by})`, EXIT.aborted, true);
    }
    this.inFlightWeight = null;
    this.weight = weight;
    this.record.weight = weight;
    this.emit({ type: 'traffic', at: this.now(), weight, message: why });
  }

  private async runStep(index: number): Promise<void> {
    const { policy, clock, signal } = this.opts;
    const step = policy.steps[index];
    if (!step) return;
    this.record.stepIndex = index;
    this.setPhase('progressing', `step ${index + 1} of ${policy.steps.length}: ${step.weight}% to canary`);
    this.record.steps.push({ index, weight: step.weight, startedAt: this.iso() });
    // Recorded before the weight goes up: if an operator rolled back in between, the write
    // conflicts and the canary never gets the larger share.
    await this.persist();
    await this.setWeight(step.weight, `step ${index + 1}: ${step.weight}% of traffic to the canary`);
    await this.persist();
    this.emit({ type: 'step', at: this.now(), stepIndex: index, weight: step.weight, durationMs: step.durationMs, steps: policy.steps.length });

    const planned = Math.max(1, Math.floor(step.durationMs / policy.intervalMs));
    // Checks fall on absolute ticks from the moment the weight took effect: check k covers the
    // window ending at start + k × interval, so windows neither drift by the time each check
    // takes nor leave gaps between them.
    const changedAt = this.now();
    const ticks = new TickSchedule(changedAt, policy.intervalMs);
    let done = 0;
    let extendedNoted = false;
    let heldNoted = false;
    let skipped = 0;
    let checked = 0;
    for (;;) {
      await clock.sleep(Math.max(0, ticks.next - this.now()), signal);
      this.throwIfCancelled();
      done = ticks.tick;
      // No window may start before the weight change it judges: what came before is another
      // step's traffic (or, at the first step, another rollout's, under the same labels).
      const atMs = ticks.next - (this.opts.evaluationDelayMs ?? 0);
      const windowStart = atMs - policy.analysis.windowMs;
      if (windowStart < changedAt) {
        if (skipped === 0) {
          const first = changedAt + policy.analysis.windowMs + (this.opts.evaluationDelayMs ?? 0);
          this.log('info', `step ${index + 1}: no check before ${new Date(first).toISOString()}, so that no window starts before the weight change to ${step.weight}% at ${new Date(changedAt).toISOString()}`);
        }
        skipped += 1;
        ticks.advance(this.now());
        continue;
      }
      checked += 1;
      const note = skipped > 0 && checked === 1
        ? `delayed: the first check of step ${index + 1} judges ${new Date(windowStart).toISOString()} to ${new Date(atMs).toISOString()}, after the weight change at ${new Date(changedAt).toISOString()} (${skipped} earlier check time${skipped === 1 ? '' : 's'} would have judged traffic from before it)`
        : undefined;
      const check = await this.check(index, step.weight, { done, planned }, atMs, note);
      const overrun = ticks.advance(this.now());
      if (overrun > 0) {
        this.log('warn', `check ${check.index} took past the next check's time: skipping ${overrun} check${overrun === 1 ? '' : 's'}, the next one is at ${new Date(ticks.next).toISOString()}`);
      }
      if (done < planned) continue;
      if (check.verdict === 'pass') break;
      if (check.verdict === 'pending') {
        // Time is up and no judge has decided. The step advances only when no critical estimate
        // is above its cap and the evidence does not lean towards a regression; otherwise it
        // waits for the decision, for at most another step's worth of checks, then rolls back.
        const adverse = check.results.filter((r) => r.critical && r.verdict === 'pending' && r.adverse).map((r) => `${r.metric}: ${r.adverse}`);
        if (adverse.length === 0) {
          const why = check.results.filter((r) => r.critical && r.verdict === 'pending').map((r) => `${r.metric}: ${r.reason}`);
          this.log('warn', `step ${index + 1} advances without proof of health (no regression shown, none ruled out at the margin): ${why.join('; ')}`);
          break;
        }
        if (done >= 2 * planned) {
          throw new Halt('rolled-back', `step ${index + 1} held ${done - planned} checks past its ${planned} planned without a decision while ${adverse.join('; ')}; a step is not advanced on adverse evidence`, EXIT.rolledBack);
        }
        if (!heldNoted) {
          heldNoted = true;
          this.log('warn', `step ${index + 1} held at ${step.weight}% (up to ${planned} more checks, then rollback): ${adverse.join('; ')}`);
        }
        continue;
      }
      if (!extendedNoted) {
        extendedNoted = true;
        this.log('warn', `step ${index + 1} held past its ${planned} planned checks: it advances only after a passing check`);
      }
    }
    const history = this.record.steps[this.record.steps.length - 1];
    if (history) history.endedAt = this.iso();
  }

  /** One check, judging the window that ends at `atMs` (the tick, less the evaluation delay). */
  private async check(stepIndex: number, weight: number, stepChecks: { done: number; planned: number }, atMs: number, note?: string): Promise<CheckRecord> {
    const { policy } = this.opts;
    const at = new Date(atMs);
    const { verdict, results, warnings: found } = await this.analyzer.check(at, weight, stepIndex).catch((err: unknown) => {
      // Without metrics the canary cannot be judged, and an unjudged canary does not keep traffic.
      throw err instanceof CanaryError ? new Halt('failed', `cannot judge the canary: ${messageOf(err)}`, err.exitCode) : err;
    });
    const warnings = note ? [note, ...found] : found;
    const check: CheckRecord = {
      index: this.tallies.run + 1,
      at: at.toISOString(),
      stepIndex,
      weight,
      verdict,
      results,
      ...(warnings.length > 0 && { warnings }),
    };
    keepCheck(this.record, check, policy.analysis.historyLimit);

    this.tally(verdict, stepIndex);
    const { failureLimit, inconclusiveLimit, countFailures } = policy.analysis;
    let halt: Halt | undefined;
    if (verdict === 'fail' && this.failures >= failureLimit) {
      const count = failureLimit > 1 ? ` (${this.failures} failed checks${countFailures === 'consecutive' ? ' in a row' : ''})` : '';
      halt = new Halt('rolled-back', `${failureReason(results)}${count}`, EXIT.rolledBack);
    } else if (verdict === 'inconclusive' && this.inconclusiveRun >= inconclusiveLimit) {
      halt = new Halt('rolled-back', inconclusiveReason(results, this.inconclusiveRun), EXIT.rolledBack);
    }
    // A check that ends the rollout is recorded by the rollback, after the canary is at 0%:
    // no write may stand before that one.
    if (!halt) await this.persist();
    // Reported before the decision acts, so the deciding check is shown like every other.
    this.emit({ type: 'check', at: this.now(), check, failures: this.failures, inconclusiveRun: this.inconclusiveRun, stepChecks });
    if (halt) throw halt;
    return check;
  }

  /**
   * A plain abort is a cancellation (SIGTERM/SIGINT); an abort whose reason is a CanaryError (the
   * lease was lost) is a failure, and traffic goes to stable whatever --on-cancel says.
   */
  private cancellation(): Halt | null {
    const signal = this.opts.signal;
    if (!signal?.aborted) return null;
    if (signal.reason instanceof CanaryError) {
      const takenOver = signal.reason.kind === 'taken-over';
      return new Halt(takenOver ? 'aborted' : 'failed', messageOf(signal.reason), signal.reason.exitCode, false, takenOver);
    }
    return new Halt('aborted', 'cancelled', EXIT.aborted);
  }

  private throwIfCancelled(): void {
    const halt = this.cancellation();
    if (halt) throw halt;
  }

  /** Saves the record; a conflict means someone else wrote it, which today only `canary rollback` does. */
  private async persist(): Promise<void> {
    this.record.updatedAt = this.iso();
    const judge = this.analyzer.snapshot();
    if (Object.keys(judge).length > 0) this.record.judge = judge;
    try {
      this.version = await this.opts.ports.state.save(this.record, this.version);
    } catch (err) {
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
  }

  /**
   * Best effort: a failed write must never stand between the canary and 0%. A save that found
   * the rollout taken over (or stopped by an operator) is not a failed write: it says who owns
   * the rollout now, so it is returned for the caller to act on, never swallowed.
   */
  private async persistQuietly(): Promise<Halt | null> {
    try {
      await this.persist();
      return null;
    } catch (err) {
      if (err instanceof Halt) return err;
      this.log('warn', `could not save the rollout record: ${messageOf(err)}`);
      return null;
    }
  }

  /** The rollout was taken over while this process stopped it: what is left is the new owner's. */
  private takenOverDuringStop(lost: Halt, stoppedFor: string, traffic: string): Outcome {
    this.takenOverInStop = true;
    const reason = `${stoppedFor}; traffic was sent back (${traffic}), then the rollout was taken over (${lost.message}): the rest of the stop (stable, the canary, the record, incidents) is left to the process that owns it now`;
    const outcome: Outcome = { result: 'aborted', reason, at: this.iso(), exitCode: EXIT.aborted, traffic };
    this.log('warn', reason);
    this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
    return outcome;
  }

  /**
   * Promotion, one recorded stage at a time, each idempotent against the cluster, so `--resume`
   * can continue from whichever stage the record names. Weight goes to the canary only once the
   * canary is ready; when stable already runs the new image, traffic goes straight back to it.
   */
  private async promote(resumed = false): Promise<Outcome> {
    const { ports, image } = this.opts;
    this.setPhase('promoting', `all steps done; promoting ${image} to stable`);
    let stage = this.record.promotion ?? 'routing-to-canary';
    if (resumed) stage = await this.resumeStage(stage);
    if (stage === 'routing-to-canary') {
      this.record.promotion = 'routing-to-canary';
      await this.persist();
      this.throwIfCancelled();
      await this.setWeight(100, 'promotion: all traffic to the canary while stable is updated');
      stage = 'updating-stable';
    }
    if (stage === 'updating-stable') {
      this.record.promotion = 'updating-stable';
      await this.persist();
      this.throwIfCancelled();
      this.stablePatched = true;
      // Fenced: lands only while this rollout still owns its route; a write that loses is lost.
      const router = ports.router;
      try {
        await ports.workloads.promoteStable(image, { ...(router.checkFence && { fence: () => router.checkFence!() }) });
      } catch (err) {
        if (!(err instanceof StopRequestedError)) throw err;
        throw new Halt('aborted', `rolled back by an operator during the promotion: ${err.by}`, EXIT.aborted, true);
      }
      stage = 'routing-to-stable';
    }
    // Stable runs the new image and is available (promoteStable waited for it, or resumeStage saw
    // it): from here the only direction is forward.
    this.pastNoReturn = true;
    if (stage === 'routing-to-stable') {
      this.stablePatched = true;
      // An operator who rolled back while stable was updating still gets exit 4 (this save conflicts).
      this.record.promotion = 'routing-to-stable';
      await this.persist();
      await this.setWeight(0, 'promotion: stable runs the new image; canary route back to 0%');
      stage = 'scaling-down';
    }
    this.record.promotion = 'scaling-down';
    await this.persist();
    await ports.workloads.scaleDownCanary();
    const reason = promotionReason(countsOf(this.record).total);
    const outcome: Outcome = { result: 'promoted', reason, at: this.iso(), exitCode: EXIT.ok, traffic: 'all traffic on stable, which now runs the new image' };
    const before = structuredClone(this.record);
    this.record.phase = 'promoted';
    this.record.images.stable = image;
    delete this.record.promotion;
    this.record.outcome = outcome;
    try {
      await this.persist();
    } catch (err) {
      if (err instanceof Halt) throw err;
      // The cluster is promoted, the record is not: do not claim success, and do not roll back.
      this.record = before;
      const failed: Outcome = {
        result: 'failed',
        reason: `the promotion is done in the cluster (stable runs ${image}, canary at 0%) but the final record could not be saved: ${messageOf(err)}; record it with \`${resumeHint(this.ctx, image)}\``,
        at: this.iso(),
        exitCode: err instanceof CanaryError ? err.exitCode : EXIT.unexpected,
        traffic: 'all traffic on stable, which now runs the new image',
      };
      this.log('error', failed.reason);
      this.emit({ type: 'finished', at: this.now(), outcome: failed, record: this.record });
      return failed;
    }
    this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
    return outcome;
  }

  /**
   * Where a resumed promotion really stands: if stable already runs the new image and is
   * available, traffic goes straight back to it; otherwise the canary is made ready (it may have
   * been scaled down) before any weight goes to it.
   */
  private async resumeStage(recorded: NonNullable<RolloutRecord['promotion']>): Promise<NonNullable<RolloutRecord['promotion']>> {
    const { ports, image } = this.opts;
    const stableImage = await ports.workloads.stableImage();
    if (stableImage === image) {
      const stable = await ports.workloads.verifyStable();
      if (stable.available) {
        this.log('info', `resuming promotion: stable already runs ${image} and is available; routing all traffic to stable`);
        return recorded === 'scaling-down' ? 'scaling-down' : 'routing-to-stable';
      }
    }
    this.log('info', `resuming promotion (${recorded}): making sure the canary is ready before any traffic goes to it`);
    await ports.workloads.startCanary(image);
    // From the top: each stage is idempotent (a weight already set, stable already updating).
    return 'routing-to-canary';
  }

  private async halt(stopped: Halt): Promise<Outcome> {
    const { ports, onCancel } = this.opts;
    const halt = stopped;
    if (halt.takenOver || halt.byOperator) {
      // Someone else stopped the rollout (the fence on the route, or their record) or took it
      // over: traffic, record and canary are theirs now; a write of ours could only fight them.
      const traffic = halt.takenOver ? 'left to the deploy that took over' : `left to the stop that ended this rollout (if in doubt, run \`${rollbackHint(this.ctx)}\`)`;
      const outcome: Outcome = { result: 'aborted', reason: halt.message, at: this.iso(), exitCode: halt.exitCode, traffic };
      this.log('warn', halt.message);
      this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
      return outcome;
    }
    if (this.pastNoReturn) return this.finishForward(halt);
    const cancelled = halt.result === 'aborted';
    if (cancelled && onCancel === 'leave') {
      this.log('warn', `cancelled with --on-cancel leave: the canary keeps ${this.weight}% of traffic`);
      return this.finish('aborted', 'aborted', 'aborted: cancelled (traffic left as it was, --on-cancel leave)', EXIT.aborted, `canary left at ${this.weight}%`);
    }
    if (!this.routed) {
      const traffic = 'traffic untouched: the rollout stopped before the canary route was created';
      return this.finish(halt.result, halt.result, cancelled ? `aborted: ${halt.message}` : halt.message, halt.exitCode, traffic);
    }

    // Traffic first: 0% with the stop marker, read back, until a read shows it or the deadline passes.
    const inFlight = this.inFlightWeight;
    const promoting = this.stablePatched;
    this.record.phase = 'rolling-back';
    const marker = `${halt.result} by deploy ${this.record.id} at ${this.iso()}: ${halt.message}`;
    const stop = await stopTraffic({
      router: ports.router,
      clock: this.opts.clock,
      marker,
      deadlineMs: this.opts.stop?.deadlineMs ?? DEFAULT_DEPLOY_STOP_DEADLINE_MS,
      callTimeoutMs: this.opts.stop?.callTimeoutMs ?? 10_000,
      onRetry: (m) => this.log('warn', m),
    });
    if (!stop.confirmed) {
      // No scale-down, no rollback record, no Lease release: the canary may still get traffic.
      this.trafficSafe = false;
      this.inFlightWeight = null;
      const traffic = describeTraffic(stop, this.ctx, this.lastWeightWords(inFlight));
      this.log('error', traffic);
      this.setPhase('rolling-back', `${halt.message}; stopping, but 0% is not confirmed`);
      const lost = await this.persistQuietly();
      if (lost?.takenOver) this.log('warn', `the rollout was taken over while this stop could not confirm 0% (${lost.message}); traffic: ${traffic}`);
      const exitCode = stop.permanent && stop.error instanceof CanaryError ? stop.error.exitCode : EXIT.unreachable;
      const outcome: Outcome = { result: 'failed', reason: `${halt.message}; the canary could not be confirmed at 0% before the stop deadline`, at: this.iso(), exitCode, traffic };
      this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
      return outcome;
    }
    this.inFlightWeight = null;
    this.weight = 0;
    this.record.weight = 0;
    this.emit({ type: 'traffic', at: this.now(), weight: 0, message: `rollback: ${halt.message}` });
    const traffic = describeTraffic(stop, this.ctx);
    this.setPhase('rolling-back', halt.message);
    const lost = await this.persistQuietly();
    if (lost?.takenOver) return this.takenOverDuringStop(lost, halt.message, traffic);
    // An operator's rollback found only now (this save conflicted) is what stopped us: theirs is
    // the story, the exit code, the incident, and the rest of the stop (stable, canary, Lease).
    if (this.operatorAbort) {
      const outcome: Outcome = { result: 'aborted', reason: this.operatorAbort, at: this.iso(), exitCode: EXIT.aborted, traffic };
      this.log('warn', this.operatorAbort);
      this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
      return outcome;
    }

    const foreign = stop.after?.foreign.some((r) => (r.weight ?? 0) > 0 || r.overrides.length > 0) ?? false;
    const done = await finishStop({
      workloads: this.opts.stop?.workloads ?? ports.workloads,
      clock: this.opts.clock,
      callTimeoutMs: this.opts.stop?.callTimeoutMs ?? 10_000,
      ...(promoting && { restoreStable: { image: this.record.images.stable, stableDeployment: this.opts.names.stableDeployment } }),
      canaryStillRouted: foreign,
      marker,
      ctx: this.ctx,
      say: (level, line) => this.log(level, line),
    });
    const stable = done.stable ?? { available: false, message: 'stable could not be verified' };
    this.record.rollback = {
      ...(this.record.rollback ?? { reason: halt.message, requestedBy: this.opts.startedBy, at: this.iso() }),
      // A verification that never happened (dry-run, backtest) is not reported as one.
      ...("verified" in stable && stable.verified === false ? {} : { stableVerified: stable.available }),
      stableMessage: stable.message,
      ...(done.restore && { stableRestore: done.restore }),
    };
    if (!stable.available) this.log('error', `stable is not healthy after rollback: ${stable.message}`);
    let message = halt.message;
    if (done.restore && !done.restore.done) message = `${message}; ${done.restore.message}`;
    const reason = cancelled ? `aborted: ${message}` : message;
    const outcome = await this.finish(halt.result, halt.result, reason, halt.exitCode, traffic);
    if (this.takenOverInStop) return outcome;
    await this.openIncidents();
    return outcome;
  }

  /**
   * A stop past the promotion's point of no return: stable already runs the new image and is
   * available, so setting it back would be a second deployment, not a rollback. The canary route
   * goes to 0% (all traffic to stable, i.e. to the new image), the canary is scaled down, the
   * promotion is recorded; whatever cannot be done is said, with the command that finishes it.
   */
  private async finishForward(halt: Halt): Promise<Outcome> {
    const { ports, image } = this.opts;
    this.log('warn', `${halt.message}; stable already runs ${image} and is available (past the point of no return): finishing the promotion forward, never setting stable back`);
    const stop = await stopTraffic({
      router: ports.router,
      clock: this.opts.clock,
      marker: `promoted by deploy ${this.record.id} at ${this.iso()} (finished forward after: ${halt.message})`,
      deadlineMs: this.opts.stop?.deadlineMs ?? DEFAULT_DEPLOY_STOP_DEADLINE_MS,
      callTimeoutMs: this.opts.stop?.callTimeoutMs ?? 10_000,
      onRetry: (m) => this.log('warn', m),
    });
    const resume = resumeHint(this.ctx, image);
    if (!stop.confirmed) {
      const traffic = describeTraffic(stop, this.ctx, this.lastWeightWords(this.inFlightWeight)).replace(/; run `canary rollback[^`]*`$/, '');
      const reason = `${halt.message}; the promotion is done in the cluster (stable runs ${image} and is available) but the canary route could not be confirmed at 0%; left: the canary route to 0%, the canary scaled down, the record; finish with \`${resume}\``;
      this.record.promotion = 'routing-to-stable';
      await this.persistQuietly();
      const outcome: Outcome = { result: 'failed', reason, at: this.iso(), exitCode: EXIT.unreachable, traffic };
      this.log('error', reason);
      this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
      return outcome;
    }
    this.weight = 0;
    this.record.weight = 0;
    this.emit({ type: 'traffic', at: this.now(), weight: 0, message: 'promotion: stable runs the new image; canary route at 0%' });
    const left: string[] = [];
    try {
      await (this.opts.stop?.workloads ?? ports.workloads).scaleDownCanary({ timeoutMs: this.opts.stop?.callTimeoutMs ?? 10_000 });
    } catch (err) {
      left.push(`scale Deployment ${this.opts.names.canaryDeployment} to 0 (${messageOf(err)})`);
    }
    const traffic = 'all traffic on stable, which now runs the new image';
    const reason = `${promotionReason(countsOf(this.record).total)}; finished forward after: ${halt.message}${left.length ? `; left: ${left.join('; ')}` : ''}`;
    this.record.images.stable = image;
    delete this.record.promotion;
    const outcome = await this.finish('promoted', 'promoted', reason, left.length ? EXIT.unexpected : EXIT.ok, traffic);
    return outcome;
  }

  /**
   * The process is about to exit on a second signal, possibly mid-rollback: one quick stop, and
   * if a read shows 0%, the canary scaled down too; then the record says where traffic is, so
   * `status` and `rollback` can finish the job.
   */
  async recordForcedExit(budgetMs = 1500): Promise<void> {
    if (!this.hasRecord || FINAL_PHASES.includes(this.record.phase)) return;
    const inFlight = this.inFlightWeight;
    let traffic = `${this.lastWeightWords(inFlight)}; run \`${rollbackHint(this.ctx)}\``;
    if (this.routed && this.opts.onCancel !== 'leave') {
      const stop = await stopTraffic({
        router: this.opts.ports.router,
        clock: this.opts.clock,
        marker: `aborted by deploy ${this.record.id} at ${this.iso()}: exited on a second signal`,
        deadlineMs: budgetMs,
        callTimeoutMs: budgetMs,
      }).catch(() => null);
      if (stop?.confirmed) {
        this.weight = 0;
        this.record.weight = 0;
        traffic = describeTraffic(stop, this.ctx);
        await this.opts.ports.workloads.scaleDownCanary({ timeoutMs: budgetMs }).catch(() => undefined);
      } else {
        this.trafficSafe = false;
      }
    } else if (this.routed && this.weight > 0) {
      this.trafficSafe = false;
      traffic = `canary left at ${this.weight}% (--on-cancel leave)`;
    } else if (!this.routed) {
      traffic = 'traffic untouched: the rollout stopped before the canary route was created';
    }
    this.record.phase = 'aborted';
    this.record.outcome = { result: 'aborted', reason: 'aborted: exited on a second signal before the rollout had stopped', at: this.iso(), exitCode: EXIT.aborted, traffic };
    await this.persistQuietly();
  }

  /** "last set to 10%", or with a write that may have landed, "10%, or 25% if the last change landed". */
  private lastWeightWords(inFlight: number | null): string {
    return inFlight !== null && inFlight !== this.weight
      ? `canary last set to ${this.weight}%, or ${inFlight}% if the change in flight landed`
      : `canary last set to ${this.weight}%`;
  }

  private async openIncidents(): Promise<void> {
    const results = await Promise.all(
      this.opts.ports.incidents.map((sink) =>
        sink.open(this.record).catch((err: unknown) => ({ sink: sink.name, ok: false, message: messageOf(err) })),
      ),
    );
    for (const result of results) this.emit({ type: 'incident', at: this.now(), result });
  }

  private async finish(phase: Phase, result: OutcomeResult, reason: string, exitCode: ExitCode, traffic: string): Promise<Outcome> {
    const outcome: Outcome = { result, reason, at: this.iso(), exitCode, traffic };
    this.record.phase = phase;
    this.record.outcome = outcome;
    const lost = await this.persistQuietly();
    if (lost?.takenOver) return this.takenOverDuringStop(lost, reason, traffic);
    this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
    return outcome;
  }
}
