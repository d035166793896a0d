// The rollout engine: continuing a record whose deploy died (--resume).

import { EXIT } from '../errors.js';
import { StopRequestedError, type StoredRecord } from './ports.js';
import { EngineHalting } from './halting.js';
import { Halt } from './halt.js';

export abstract class EngineResume extends EngineHalting {
  protected async resumeFrom(stored: StoredRecord): Promise<number> {
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
}
