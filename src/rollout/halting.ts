// The rollout engine: how it stops (traffic to 0% first, then the rest; finishing forward past
// a promotion's point of no return; a takeover or an operator's stop ends it without a fight).

import { CanaryError, EXIT, type ExitCode, messageOf } from '../errors.js';
import { DEFAULT_DEPLOY_STOP_DEADLINE_MS, resumeHint, rollbackHint } from './abort.js';
import { countsOf, FINAL_PHASES, type Outcome, type OutcomeResult, type Phase } from './record.js';
import { EnginePromotion } from './promotion.js';
import { Halt, promotionReason } from './halt.js';
import { requestStop, type StopMachinePorts, type Stopper, type StopReport, type StopRequest } from './stop-machine.js';

export abstract class EngineHalting extends EnginePromotion {
  /** This process as a stopper: its fence token (Lease holder + epoch) when it has one. */
  protected get stopToken(): string {
    return this.opts.stop?.token ?? `deploy ${this.opts.startedBy} (${this.record.id})`;
  }

  /** The stop machine's ports and this process as a stopper (its fence token). */
  protected stopMachine(): { ports: StopMachinePorts; stopper: Stopper } {
    const { ports, stop } = this.opts;
    return {
      ports: {
        router: ports.router,
        workloads: stop?.workloads ?? ports.workloads,
        store: ports.state,
        clock: this.opts.clock,
        release: stop?.release ?? (async () => 'the deploy gives its Lease back as it exits'),
      },
      stopper: {
        token: this.stopToken,
        ctx: this.ctx,
        deadlineMs: stop?.deadlineMs ?? DEFAULT_DEPLOY_STOP_DEADLINE_MS,
        callTimeoutMs: stop?.callTimeoutMs ?? 10_000,
        stableDeployment: this.opts.names.stableDeployment,
        canaryDeployment: this.opts.names.canaryDeployment,
        // The machine's lines, at the level an operator scanning the log needs them.
        say: (line) => this.log(/NOT confirmed|^STABLE |could not be set back/.test(line) ? 'error' : /still trying|waits for the Lease|could not/.test(line) ? 'warn' : 'info', line),
        ...(stop?.mayAct && { mayAct: stop.mayAct }),
      },
    };
  }

  /**
   * The Lease was taken by another process while this one stopped (the renewal loop saw it): from
   * then on nothing but the 0% write already confirmed is ours to do.
   */
  protected leaseTakenDuringStop(): Halt | null {
    const reason: unknown = this.opts.signal?.reason;
    if (!(reason instanceof CanaryError) || reason.kind !== 'taken-over') return null;
    return new Halt('aborted', messageOf(reason), EXIT.aborted, false, true);
  }

  /** Set when the rollout was taken over mid-stop: its ending (post-rollout hooks included) is the new owner's. */
  protected takenOverInStop = false;

  protected takenOverDuringStop(lost: Halt, stoppedFor: string, traffic: string): Outcome {
    this.takenOverInStop = true;
    const reason = `${stoppedFor}; traffic was sent back (${traffic}), then the rollout was taken over (${lost.message}): the rest of the stop (stable, the canary, the record, incidents) is left to the process that owns it now`;
    const outcome: Outcome = { result: 'aborted', reason, at: this.iso(), exitCode: EXIT.aborted, traffic };
    this.log('warn', reason);
    this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
    return outcome;
  }

  protected async halt(stopped: Halt): Promise<Outcome> {
    const { onCancel } = this.opts;
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
    // The stop machine drives every transition; this deploy only asks and reports.
    const request: StopRequest = { requestedBy: `deploy ${this.record.id}`, reason: cancelled ? `aborted: ${halt.message}` : halt.message, result: halt.result, exitCode: halt.exitCode, rollbackBy: this.opts.startedBy };
    const report = await this.requestOwnStop(request, 'rollback: ' + halt.message);
    if (!report.confirmed && !report.lostTo) {
      // No scale-down, no rollback record, no Lease release: the canary may still get traffic.
      return this.finished({ result: 'failed', reason: `${halt.message}; the canary could not be confirmed at 0% before the stop deadline`, at: this.iso(), exitCode: report.exitCode, traffic: report.traffic });
    }
    return this.reportStop(report, halt.message);
  }

  /**
   * The stop machine, asked by this deploy with the record it holds: traffic first, then each
   * transition; this process follows it (events, incidents once recorded) and reports its end.
   */
  protected async requestOwnStop(request: StopRequest, trafficWhy: string): Promise<StopReport> {
    const inFlight = this.inFlightWeight;
    const judge = this.analyzer.snapshot();
    if (Object.keys(judge).length > 0) this.record.judge = judge;
    const { ports, stopper } = this.stopMachine();
    const forward = request.direction === 'forward';
    const report = await requestStop(
      {
        ...ports,
        onState: async (state, record) => {
          this.record = record;
          if (state === 'traffic-zero-confirmed') {
            this.inFlightWeight = null;
            this.weight = 0;
            this.emit({ type: 'traffic', at: this.now(), weight: 0, message: trafficWhy });
            if (!forward) this.setPhase('rolling-back', request.reason);
          }
          if (state === 'stable-restored' && record.rollback?.stableVerified === false) this.log('error', `stable is not healthy after rollback: ${record.rollback.stableMessage ?? ''}`);
          // Incidents once the stop is recorded, before the Lease goes; only for a stop of ours.
          if (state === 'recorded' && !forward) await this.openIncidents();
        },
      },
      { ...stopper, takenBy: () => this.leaseTakenDuringStop()?.message ?? null },
      request,
      { current: () => ({ record: this.record, version: this.version }), lastSet: this.lastWeightWords(inFlight) },
    );
    if (report.record) this.record = report.record;
    // The machine saved the record last: later saves of ours (post-rollout hooks) build on its version.
    if (report.version !== undefined) this.version = report.version;
    this.trafficSafe = report.confirmed;
    if (!report.confirmed) this.inFlightWeight = null;
    return report;
  }

  /** What the stop machine returned, as this deploy's outcome. */
  protected reportStop(report: StopReport, stoppedFor: string): Outcome {
    if (report.operatorAbort) {
      // An operator's rollback found only now (the stop's write conflicted) is what stopped us:
      // theirs is the story, the exit code, the incident, and the rest of the stop.
      this.operatorAbort = report.operatorAbort;
      this.log('warn', report.operatorAbort);
      return this.finished({ result: 'aborted', reason: report.operatorAbort, at: this.iso(), exitCode: EXIT.aborted, traffic: report.traffic });
    }
    if (report.lostTo) return this.takenOverDuringStop(new Halt('aborted', report.lostTo, EXIT.aborted, false, true), stoppedFor, report.traffic);
    const outcome = this.record.outcome;
    if (report.state === 'released' && outcome) return this.finished(outcome, false);
    return this.finished({
      result: 'failed',
      reason: `${stoppedFor}; the stop is left in state ${report.state}: finish it with \`${rollbackHint(this.ctx)}\``,
      at: this.iso(),
      exitCode: report.exitCode === EXIT.ok ? EXIT.unexpected : report.exitCode,
      traffic: report.traffic,
    });
  }

  protected finished(outcome: Outcome, log = true): Outcome {
    if (log) this.log(outcome.result === 'aborted' ? 'warn' : 'error', outcome.reason);
    this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
    return outcome;
  }

  /**
   * A stop past the promotion's point of no return: stable already runs the new image and is
   * available, so setting it back would be a second deployment, not a rollback. The stop machine
   * runs forward: canary route to 0% (all traffic to stable, i.e. to the new image), canary scaled
   * down, the promotion recorded; a stop left on the way is finished forward by whoever takes it on.
   */
  protected async finishForward(halt: Halt): Promise<Outcome> {
    const { image } = this.opts;
    this.log('warn', `${halt.message}; stable already runs ${image} and is available (past the point of no return): finishing the promotion forward, never setting stable back`);
    const reason = `${promotionReason(countsOf(this.record).total)}; finished forward after: ${halt.message}`;
    const report = await this.requestOwnStop({ requestedBy: `deploy ${this.record.id}`, reason, result: 'promoted', direction: 'forward' }, 'promotion: stable runs the new image; canary route at 0%');
    if (!report.confirmed && !report.lostTo) {
      const traffic = report.traffic.replace(/; run `canary rollback[^`]*`$/, '');
      return this.finished({
        result: 'failed',
        reason: `${halt.message}; the promotion is done in the cluster (stable runs ${image} and is available) but the canary route could not be confirmed at 0%; left: the canary route to 0%, the canary scaled down, the record; finish with \`${resumeHint(this.ctx, image)}\` (or \`${rollbackHint(this.ctx)}\`, which finishes it forward too)`,
        at: this.iso(),
        exitCode: report.exitCode,
        traffic,
      });
    }
    return this.reportStop(report, halt.message);
  }

  /**
   * The process is about to exit on a second signal, possibly mid-stop: the stop machine, asked
   * once more with a short deadline as this process's second stopper (it takes over the deploy's
   * own stop), goes as far as it can; `status` and `canary rollback` take it on from there.
   */
  async recordForcedExit(budgetMs = 1500): Promise<void> {
    if (!this.hasRecord || FINAL_PHASES.includes(this.record.phase)) return;
    const reason = 'aborted: exited on a second signal before the rollout had stopped';
    if (this.routed && this.opts.onCancel !== 'leave') {
      const { ports, stopper } = this.stopMachine();
      const forward = this.pastNoReturn;
      const request: StopRequest = forward
        ? { requestedBy: `deploy ${this.record.id} (second signal)`, reason: `${promotionReason(countsOf(this.record).total)}; finished forward after a second signal`, result: 'promoted', direction: 'forward' }
        : { requestedBy: `deploy ${this.record.id} (second signal)`, reason, result: 'aborted' };
      const report = await requestStop(
        ports,
        { ...stopper, token: `${stopper.token} (second signal)`, supersedes: [stopper.token], deadlineMs: budgetMs, callTimeoutMs: budgetMs },
        request,
        { current: () => ({ record: this.record, version: this.version }), lastSet: this.lastWeightWords(this.inFlightWeight) },
      ).catch((err: unknown) => {
        this.log('error', `the stop on a second signal failed: ${messageOf(err)}`);
        return null;
      });
      this.trafficSafe = report?.confirmed ?? false;
      return;
    }
    let traffic: string;
    if (this.routed && this.weight > 0) {
      this.trafficSafe = false;
      traffic = `canary left at ${this.weight}% (--on-cancel leave)`;
    } else if (!this.routed) {
      traffic = 'traffic untouched: the rollout stopped before the canary route was created';
    } else {
      traffic = `${this.lastWeightWords(this.inFlightWeight)}; run \`${rollbackHint(this.ctx)}\``;
    }
    this.record.phase = 'aborted';
    this.record.outcome = { result: 'aborted', reason, at: this.iso(), exitCode: EXIT.aborted, traffic };
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
