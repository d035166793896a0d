// The rollout engine: continuing a record whose deploy died (--resume).

import { EXIT } from '../errors.js';
import { StopRequestedError, type StoredRecord } from './ports.js';
import type { Outcome } from './record.js';
import { resumeStop, STOP_STATES } from './stop-machine.js';
import { EngineHalting } from './halting.js';
import { Halt } from './halt.js';

export abstract class EngineResume extends EngineHalting {
  /**
   * `--resume` of a record whose stop was left unfinished: the stop machine takes it on from the
   * state it finds; this process only reports the result.
   */
  protected async takeOnStop(stored: StoredRecord): Promise<Outcome> {
    this.record = stored.record;
    this.hasRecord = true;
    this.version = stored.version;
    this.weight = stored.record.weight;
    this.routed = true;
    this.emit({ type: 'started', at: this.now(), record: this.record, resumed: true });
    this.log('info', `resuming rollout ${this.record.id}: its stop was left in state ${stored.record.stop?.state}; finishing it`);
    const { ports, stopper } = this.stopMachine();
    const report = await resumeStop(ports, stopper);
    if (report?.record) this.record = report.record;
    // Past its first state, a read showed 0%: the Lease may go.
    this.trafficSafe = report !== null && (report.confirmed || STOP_STATES.indexOf(report.state) > 0);
    const done = report?.state === 'released' && this.record.outcome && !report.lostTo;
    const outcome: Outcome = done
      ? this.record.outcome!
      : {
          result: 'failed',
          reason: report?.lostTo ? `the stop was taken on by ${report.lostTo}` : `the stop is left in state ${report?.state ?? 'unknown'}`,
          at: this.iso(),
          exitCode: report?.exitCode ?? EXIT.unexpected,
          traffic: report?.traffic ?? 'unknown',
        };
    this.emit({ type: 'finished', at: this.now(), outcome, record: this.record });
    return outcome;
  }

  protected async resumeFrom(stored: StoredRecord): Promise<number> {
    const { policy, ports } = this.opts;
    this.record = stored.record;
    this.hasRecord = true;
    this.version = stored.version;
    this.weight = stored.record.weight;
    this.routed = true;
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
    // A watch after promotion resumes as the promotion's last stage, never as a step.
    if (this.record.phase === 'promoting' || this.record.phase === 'watching') return policy.steps.length;
    if (this.record.phase === 'initializing') {
      await ports.router.prepare();
      await ports.workloads.startCanary(this.opts.image);
      return 0;
    }
    return Math.min(this.record.stepIndex, policy.steps.length);
  }
}
