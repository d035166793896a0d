import { plannedChecks } from '../policy/policy.js';
import type { StoredRecord } from './ports.js';
import { rolloutIdFor } from './rollout-id.js';
import { emptyTallies, RECORD_SCHEMA_VERSION, type Outcome } from './record.js';
import { EngineChecksBesideSteps } from './smoke-and-hooks.js';
import { unfinishedStop } from './stop-machine.js';

export type { EngineOptions, EnginePorts } from './persistence.js';
export { promotionReason } from './halt.js';
export { TickSchedule } from './ticks.js';
export { rolloutIdFor } from './rollout-id.js';

/**
 * The rollout state machine. It only talks to ports, so the same code drives a live cluster, a
 * dry-run, a replay and a backtest. Traffic safety comes first on every exit path: whatever
 * goes wrong, the canary is sent to 0% before anything else is attempted.
 *
 * Its rooms, one file each: persistence.ts (state, saves), checks.ts, steps.ts, promotion.ts,
 * halting.ts (stops), resume.ts, post-promotion-watch.ts, gates.ts, smoke-and-hooks.ts; this file runs a rollout from start to end.
 */
export class RolloutEngine extends EngineChecksBesideSteps {
  /**
   * Runs the rollout to its end. With `resume`, continues a record whose deploy died: the
   * recorded step starts over (its checks are kept in the record), a promotion is redone, and a
   * rollback in progress is finished; all of these are idempotent against the cluster.
   */
  async run(resume?: StoredRecord): Promise<Outcome> {
    const outcome = await this.drive(resume);
    // Taken over: the process that drives the rollout now owns its ending, hooks included.
    if (!this.handedOver && !this.takenOverInStop && this.hasRecord) await this.postRollout(outcome);
    return outcome;
  }

  /** Set when a halt found the rollout taken over by another process. */
  private handedOver = false;

  private async drive(resume?: StoredRecord): Promise<Outcome> {
    const { policy } = this.opts;
    try {
      // A stop left unfinished (a crashed stopper): the stop machine takes it on from its state.
      if (resume && unfinishedStop(resume.record)) return await this.takeOnStop(resume);
      const first = resume ? await this.resumeFrom(resume) : await this.start();
      if (first === 0 && (!resume || resume.record.phase === 'initializing')) {
        await this.smoke('before traffic');
        await this.hooks('pre-rollout', 'pre-rollout');
      }
      for (let i = first; i < policy.steps.length; i += 1) {
        await this.runStep(i);
        if (policy.smokeTests?.afterEachStep) await this.smoke(`after step ${i + 1}`);
        await this.hooks('step', `step ${i + 1}`);
        if (this.skipToPromotion) break;
      }
      const promoting = resume?.record.phase === 'promoting' || resume?.record.phase === 'watching';
      if (!promoting) await this.hooks('pre-promotion', 'pre-promotion');
      return await this.promote(promoting);
    } catch (err) {
      const halt = this.asHalt(err);
      this.handedOver = halt.takenOver;
      return this.halt(halt);
    }
  }

  protected async start(): Promise<number> {
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
      ...(this.opts.retryOf !== undefined && { retryOf: this.opts.retryOf }),
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
    if (this.opts.retryOf) this.log('info', `a retry of rollout ${this.opts.retryOf} (same image), from the first step`);
    // Before anything changes: stable's own figures are what the post-promotion watch compares with.
    const baseline = await this.measureBaseline();
    if (baseline) {
      this.record.baseline = baseline;
      await this.persist();
    }
    this.routed = true;
    await ports.router.prepare();
    await ports.workloads.startCanary(image);
    this.throwIfCancelled();
    return 0;
  }
}
