// The rollout engine: promotion, one recorded stage at a time (fenced stable write).

import { CanaryError, EXIT, messageOf, type ExitCode } from '../errors.js';
import { resumeHint } from './abort.js';
import { StopRequestedError } from './ports.js';
import { countsOf, type Outcome, type RolloutRecord } from './record.js';
import { EngineSteps } from './steps.js';
import { Halt, promotionReason } from './halt.js';

export abstract class EnginePromotion extends EngineSteps {
  /**
   * Promotion, one recorded stage at a time, each idempotent against the cluster, so `--resume`
   * can continue from whichever stage the record names. Weight goes to the canary only once the
   * canary is ready; when stable already runs the new image, traffic goes straight back to it.
   */
  protected async promote(resumed = false): Promise<Outcome> {
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
      // An operator who rolled back while stable was updating still gets exit 4 (this save conflicts).
      this.record.promotion = 'routing-to-stable';
      await this.persist();
      await this.setWeight(0, 'promotion: stable runs the new image; canary route back to 0%');
      stage = 'scaling-down';
    }
    this.record.promotion = 'scaling-down';
    await this.persist();
    await ports.workloads.scaleDownCanary();
    // spec.postPromotion: stable runs the new image with all traffic; it is watched before the promotion is final.
    if (this.opts.policy.postPromotion) return this.watchAfterPromotion();
    return this.finishPromotion(promotionReason(countsOf(this.record).total), EXIT.ok);
  }

  /** The watch of stable after promotion (post-promotion-watch.ts); it ends with finishPromotion or a rollback. */
  protected abstract watchAfterPromotion(): Promise<Outcome>;

  /** The promotion recorded as final; a record that cannot be saved is not claimed as a success. */
  protected async finishPromotion(reason: string, exitCode: ExitCode): Promise<Outcome> {
    const { image } = this.opts;
    const outcome: Outcome = { result: 'promoted', reason, at: this.iso(), exitCode, traffic: 'all traffic on stable, which now runs the new image' };
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
  protected async resumeStage(recorded: NonNullable<RolloutRecord['promotion']>): Promise<NonNullable<RolloutRecord['promotion']>> {
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
}
