// The rollout engine: one step (the weight change, then checks on ticks from it).

import { EXIT } from '../errors.js';
import type { CheckRecord } from '../analysis/types.js';
import { EngineGates } from './gates.js';
import { Halt } from './halt.js';
import { TickSchedule } from './ticks.js';

export abstract class EngineSteps extends EngineGates {
  protected async runStep(index: number): Promise<void> {
    const { policy, clock, signal } = this.opts;
    const step = policy.steps[index];
    if (!step) return;
    if (index === 0 && this.weight === 0) await this.holdBeforeFirstRaise();
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
    let holdingNoted = false;
    let skipped = 0;
    let checked = 0;
    // Set once the step's own checks would let it advance; from then on only the gates hold it.
    let ready = false;
    /** The step's judgement of one check: true when the step may advance (or its gates decide). */
    const allows = (check: CheckRecord): boolean => {
      if (done < planned) return false;
      if (check.verdict === 'pass') return true;
      if (check.verdict === 'pending') {
        // Time is up and no judge has decided. The step advances only when no critical estimate
        // is above its cap and the evidence does not lean towards a regression; otherwise it
        // waits for the decision, for at most another step's worth of checks, then rolls back.
        const adverse = check.results.filter((r) => r.critical && r.verdict === 'pending' && r.adverse).map((r) => `${r.metric}: ${r.adverse}`);
        // Past the hold's end, evidence too weak to roll back on within alpha still never raises
        // traffic: the step stays held until a judge decides (a breach rolls it back).
        const holding = check.results.filter((r) => r.critical && r.verdict === 'pending' && r.holding).map((r) => `${r.metric}: ${r.holding}`);
        if (adverse.length === 0 && holding.length > 0) {
          if (!holdingNoted) {
            holdingNoted = true;
            this.log('warn', `step ${index + 1} stays at ${step.weight}% past its hold: ${holding.join('; ')}; it advances once that clears, and rolls back on a breach`);
          }
          return false;
        }
        if (adverse.length === 0) {
          const why = check.results.filter((r) => r.critical && r.verdict === 'pending').map((r) => `${r.metric}: ${r.reason}`);
          this.log('warn', `step ${index + 1} advances without proof of health (no regression shown, none ruled out at the margin): ${why.join('; ')}`);
          return true;
        }
        if (done >= 2 * planned) {
          throw new Halt('rolled-back', `step ${index + 1} held ${done - planned} checks past its ${planned} planned without a decision while ${adverse.join('; ')}; a step is not advanced on adverse evidence`, EXIT.rolledBack);
        }
        if (!heldNoted) {
          heldNoted = true;
          this.log('warn', `step ${index + 1} held at ${step.weight}% (up to ${planned} more checks; then it rolls back only on evidence strong enough, and otherwise stays held until a judge decides): ${adverse.join('; ')}`);
        }
        return false;
      }
      if (!extendedNoted) {
        extendedNoted = true;
        this.log('warn', `step ${index + 1} held past its ${planned} planned checks: it advances only after a passing check`);
      }
      return false;
    };
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
        await this.syncControls(index);
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
      // Controls are read after the check, so a promote never moves on past a breach it decided.
      await this.syncControls(index);
      if (this.takePromote(index, check)) break;
      ready ||= allows(check);
      if (ready && (await this.gateOpen(index, step))) break;
    }
    const history = this.record.steps[this.record.steps.length - 1];
    if (history) history.endedAt = this.iso();
  }
}
