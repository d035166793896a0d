// The rollout engine: manual gates. Operator controls (`canary promote|pause|resume`) are read
// from the cluster-held record at every check time and answered there; a step's own `pause:`
// holds it once its checks would let it advance. Neither ever stops the checks: a breach while
// held still rolls back. They only decide whether the rollout moves forward.

import type { CheckRecord } from '../analysis/types.js';
import { messageOf } from '../errors.js';
import type { Step } from '../policy/policy.js';
import { formatDuration } from '../policy/units.js';
import { EngineChecks } from './checks.js';
import { applyControl, controlWords, isControlWrite, mergeControls, pendingControls } from './controls.js';

export abstract class EngineGates extends EngineChecks {
  /** Set by an accepted `canary promote --full`: the steps end and the promotion follows. */
  protected skipToPromotion = false;
  private pauseNoted: string | null = null;

  /**
   * Takes in controls written since this deploy last saved, and answers each in the record
   * (applied, or refused when issued against another rollout). A record changed by anything but
   * a control is someone else's stop or a takeover: the save that follows reports it as such.
   */
  protected async syncControls(stepIndex: number): Promise<void> {
    let stored;
    try {
      stored = await this.opts.ports.state.load();
    } catch (err) {
      // Reading for controls must never end a rollout: the next check time reads again.
      this.log('warn', `could not read the rollout record for operator controls (${messageOf(err)}); trying again at the next check`);
      return;
    }
    if (stored && stored.version !== this.version) {
      if (!isControlWrite(this.record, stored.record)) {
        // Fails with the stop or takeover it met (persist's conflict path), as any save would.
        await this.persist();
        return;
      }
      mergeControls(this.record, stored.record);
      this.version = stored.version;
    }
    const pending = pendingControls(this.record);
    if (pending.length === 0) return;
    for (const control of pending) {
      const ack = applyControl(this.record, control, { rolloutId: this.record.id, at: this.iso(), weight: this.weight, stepIndex });
      const why = control.reason ? ` (${control.reason})` : '';
      this.log(ack.outcome === 'applied' ? 'info' : 'warn', `\`canary ${controlWords(control.kind)}\` by ${control.by}${why}: ${ack.message}`);
    }
    await this.persist();
  }

  /**
   * Before the first raise: a pause written while the canary was starting holds the rollout at
   * 0% (no user traffic, nothing to judge) until `canary resume` or `canary promote`. Later steps
   * are held by gateOpen, with their checks going on; a promote that ends this hold is used up by
   * it (the first step is the "next step"), except --full, which still needs the first step's check.
   */
  protected async holdBeforeFirstRaise(): Promise<void> {
    await this.syncControls(0);
    const paused = this.record.controls?.paused;
    if (!paused) return;
    this.log('warn', `paused by ${paused.by} before the first step: the canary stays at 0% until \`canary resume\` or \`canary promote\``);
    while (this.record.controls?.paused) {
      await this.opts.clock.sleep(this.opts.policy.intervalMs, this.opts.signal);
      this.throwIfCancelled();
      await this.syncControls(0);
    }
    const controls = this.record.controls;
    if (controls?.promote && !controls.promote.full) delete controls.promote;
  }

  /**
   * An accepted promote moves the step on now, but only after a check without a breach: a
   * failing check below the failure limit keeps it waiting (a breach at the limit has already
   * ended the rollout before this is asked).
   */
  protected takePromote(index: number, check: CheckRecord): boolean {
    const promote = this.record.controls?.promote;
    if (!promote) return false;
    if (check.verdict === 'fail') {
      this.log('warn', `step ${index + 1}: the promote by ${promote.by} waits for a check without a failure`);
      return false;
    }
    const controls = this.record.controls!;
    delete controls.promote;
    delete controls.stepPause;
    this.pauseNoted = null;
    this.skipToPromotion = promote.full;
    this.log('info', promote.full
      ? `step ${index + 1}: promoted by ${promote.by} (--full): the remaining steps are skipped; promotion follows`
      : `step ${index + 1}: promoted by ${promote.by}: moving on from ${this.weight}%`);
    return true;
  }

  /**
   * Whether a step whose checks allow it may move on: not while an operator's pause is in force,
   * not while its own pause lasts. The step's pause begins here, once its checks allow advancing.
   */
  protected async gateOpen(index: number, step: Step): Promise<boolean> {
    const controls = this.record.controls;
    if (controls?.paused) {
      const key = `paused ${controls.paused.at}`;
      if (this.pauseNoted !== key) {
        this.pauseNoted = key;
        this.log('warn', `step ${index + 1} is ready to move on but stays at ${this.weight}%: paused by ${controls.paused.by} at ${controls.paused.at}; checks continue`);
      }
      return false;
    }
    if (step.pause === undefined) return true;
    const state = (this.record.controls ??= { log: [] });
    if (state.stepPause?.stepIndex !== index) {
      const bound = step.pause === 'until-promoted' ? null : step.pause;
      const until = bound === null ? null : new Date(this.now() + bound).toISOString();
      state.stepPause = { stepIndex: index, since: this.iso(), until };
      const how = bound === null ? 'until promoted' : `for ${formatDuration(bound)} (until ${until}) or until promoted`;
      this.log('info', `step ${index + 1} passed its checks and pauses at ${this.weight}% ${how} (\`canary promote ${this.opts.target} -n ${this.opts.namespace}\`); checks continue`);
      await this.persist();
      return false;
    }
    const until = state.stepPause.until;
    if (until === null || this.now() < Date.parse(until)) return false;
    delete state.stepPause;
    this.log('info', `step ${index + 1}: its pause ended at ${until}; moving on`);
    return true;
  }
}
