// The rollout engine: how it stops (traffic to 0% first, then the rest; finishing forward past
// a promotion's point of no return; a takeover or an operator's stop ends it without a fight).

import { CanaryError, EXIT, type ExitCode, messageOf } from '../errors.js';
import { DEFAULT_DEPLOY_STOP_DEADLINE_MS, describeTraffic, finishStop, resumeHint, rollbackHint, stopTraffic } from './abort.js';
import { countsOf, FINAL_PHASES, type Outcome, type OutcomeResult, type Phase } from './record.js';
import { EnginePromotion } from './promotion.js';
import { Halt, promotionReason } from './halt.js';
import { markStop, type StopRequest, type StopState } from './stop-machine.js';

export abstract class EngineHalting extends EnginePromotion {
  /** This process as a stopper: its fence token (Lease holder + epoch) when it has one. */
  protected get stopToken(): string {
    return this.opts.stop?.token ?? `deploy ${this.opts.startedBy} (${this.record.id})`;
  }

  /** Records the stop machine's state this halt has reached (the next save is its write). */
  protected markStop(state: StopState, request: StopRequest, promoting: boolean): void {
    markStop(this.record, state, this.stopToken, { ...request, ...(promoting && { restoreImage: this.record.images.stable }) }, this.iso());
  }

  /** The rollout was taken over while this process stopped it: what is left is the new owner's. */
  /**
   * The Lease was taken by another process while this one stopped (the renewal loop saw it): from
   * then on nothing but the 0% write already confirmed is ours to do.
   */
  protected leaseTakenDuringStop(): Halt | null {
    const reason: unknown = this.opts.signal?.reason;
    if (!(reason instanceof CanaryError) || reason.kind !== 'taken-over') return null;
    return new Halt('aborted', messageOf(reason), EXIT.aborted, false, true);
  }

  protected takenOverDuringStop(lost: Halt, stoppedFor: string, traffic: string): Outcome {
    this.takenOverInStop = true;
    const reason = `${stoppedFor}; traffic was sent back (${traffic}), then the rollout was taken over (${lost.message}): the rest of the stop (stable, the canary, the record, incidents) is left to the process that owns it now`;
    const outcome: Outcome = { result: 'aborted', reason, at: this.iso(), exitCode: EXIT.aborted, traffic };
    this.log('warn', reason);
    this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
    return outcome;
  }

  protected async halt(stopped: Halt): Promise<Outcome> {
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
    const request: StopRequest = { requestedBy: `deploy ${this.record.id}`, reason: halt.message, result: halt.result };
    const stop = await stopTraffic({
      router: ports.router,
      clock: this.opts.clock,
      marker,
      deadlineMs: this.opts.stop?.deadlineMs ?? DEFAULT_DEPLOY_STOP_DEADLINE_MS,
      callTimeoutMs: this.opts.stop?.callTimeoutMs ?? 10_000,
      onRetry: (m) => this.log('warn', m),
      ...(this.opts.stop?.mayAct && { mayAct: this.opts.stop.mayAct }),
    });
    if (!stop.confirmed) {
      // No scale-down, no rollback record, no Lease release: the canary may still get traffic.
      this.trafficSafe = false;
      this.inFlightWeight = null;
      const traffic = describeTraffic(stop, this.ctx, this.lastWeightWords(inFlight));
      this.log('error', traffic);
      this.setPhase('rolling-back', `${halt.message}; stopping, but 0% is not confirmed`);
      this.markStop('requested', request, promoting);
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
    this.markStop('traffic-zero-confirmed', request, promoting);
    const lost = (await this.persistQuietly()) ?? this.leaseTakenDuringStop();
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
    this.markStop('recorded', request, promoting);
    const outcome = await this.finish(halt.result, halt.result, reason, halt.exitCode, traffic);
    if (this.takenOverInStop) return outcome;
    await this.openIncidents();
    if (!this.operatorAbort) await this.releaseStop(request, promoting);
    return outcome;
  }

  /**
   * A stop past the promotion's point of no return: stable already runs the new image and is
   * available, so setting it back would be a second deployment, not a rollback. The canary route
   * goes to 0% (all traffic to stable, i.e. to the new image), the canary is scaled down, the
   * promotion is recorded; whatever cannot be done is said, with the command that finishes it.
   */
  protected async finishForward(halt: Halt): Promise<Outcome> {
    const { ports, image } = this.opts;
    this.log('warn', `${halt.message}; stable already runs ${image} and is available (past the point of no return): finishing the promotion forward, never setting stable back`);
    const stop = await stopTraffic({
      router: ports.router,
      clock: this.opts.clock,
      marker: `promoted by deploy ${this.record.id} at ${this.iso()} (finished forward after: ${halt.message})`,
      deadlineMs: this.opts.stop?.deadlineMs ?? DEFAULT_DEPLOY_STOP_DEADLINE_MS,
      callTimeoutMs: this.opts.stop?.callTimeoutMs ?? 10_000,
      onRetry: (m) => this.log('warn', m),
      ...(this.opts.stop?.mayAct && { mayAct: this.opts.stop.mayAct }),
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
      // Where the stop machine stands when the process exits: `canary rollback` takes it on there.
      const request: StopRequest = { requestedBy: `deploy ${this.record.id} (second signal)`, reason: 'exited on a second signal before the rollout had stopped', result: 'aborted' };
      if (stop?.confirmed) {
        this.weight = 0;
        this.record.weight = 0;
        traffic = describeTraffic(stop, this.ctx);
        const scaled = await this.opts.ports.workloads.scaleDownCanary({ timeoutMs: budgetMs }).then(() => true, () => false);
        // Stable is not looked at on a forced exit: a promotion's stop still has stable to restore.
        this.markStop(scaled && !this.stablePatched ? 'canary-scaled-down' : 'traffic-zero-confirmed', request, this.stablePatched);
      } else {
        this.trafficSafe = false;
        this.markStop('requested', request, this.stablePatched);
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

  /** The stop machine's last transition, for a stop this deploy drove itself: its Lease given back. */
  protected async releaseStop(request: StopRequest, promoting: boolean): Promise<void> {
    const release = this.opts.stop?.release;
    if (release) this.log('info', await release().catch((err: unknown) => `the Lease could not be released (it expires on its own): ${messageOf(err)}`));
    this.markStop('released', request, promoting);
    await this.persistQuietly();
  }

  /** "last set to 10%", or with a write that may have landed, "10%, or 25% if the last change landed". */
  protected lastWeightWords(inFlight: number | null): string {
    return inFlight !== null && inFlight !== this.weight
      ? `canary last set to ${this.weight}%, or ${inFlight}% if the change in flight landed`
      : `canary last set to ${this.weight}%`;
  }

  protected async openIncidents(): Promise<void> {
    const results = await Promise.all(
      this.opts.ports.incidents.map((sink) =>
        sink.open(this.record).catch((err: unknown) => ({ sink: sink.name, ok: false, message: messageOf(err) })),
      ),
    );
    for (const result of results) this.emit({ type: 'incident', at: this.now(), result });
  }

  protected async finish(phase: Phase, result: OutcomeResult, reason: string, exitCode: ExitCode, traffic: string): Promise<Outcome> {
    const outcome: Outcome = { result, reason, at: this.iso(), exitCode, traffic };
    this.record.phase = phase;
    this.record.outcome = outcome;
    const lost = await this.persistQuietly();
    if (lost?.takenOver) return this.takenOverDuringStop(lost, reason, traffic);
    this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
    return outcome;
  }
}
