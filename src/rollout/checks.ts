// The rollout engine: one check (the window it judges, the verdict, the limits it counts).

import type { CheckRecord } from '../analysis/types.js';
import { CanaryError, EXIT, messageOf } from '../errors.js';
import { keepCheck } from './record.js';
import { EngineCore } from './persistence.js';
import { failureReason, Halt, inconclusiveReason } from './halt.js';

export abstract class EngineChecks extends EngineCore {
  /** One check, judging the window that ends at `atMs` (the tick, less the evaluation delay). */
  protected async check(stepIndex: number, weight: number, stepChecks: { done: number; planned: number }, atMs: number, note?: string): Promise<CheckRecord> {
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
}
