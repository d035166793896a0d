// The rollout engine: the watch after promotion (spec.postPromotion). Stable runs the new image
// and takes all traffic; every interval its error rate and latency are compared with stable's own
// before the rollout (the baseline recorded at the start), and on a breach stable is set back to
// the image it ran before. Statistics and wording: analysis/stable-watch.ts.

import { describeFigures, judgeWatch, measureStable, watchMetrics, type StableFigures } from '../analysis/stable-watch.js';
import { queryTargetOf } from '../analysis/promql-template.js';
import { CanaryError, EXIT, messageOf } from '../errors.js';
import { formatDuration } from '../policy/units.js';
import { rollbackHint } from './abort.js';
import { Halt, promotionReason } from './halt.js';
import { restorePreviousImage } from './post-promotion-rollback.js';
import { StopRequestedError, type StoredRecord } from './ports.js';
import { countsOf, type Outcome } from './record.js';
import { EngineResume } from './resume.js';
import { TickSchedule } from './ticks.js';
import type { WatchProgress } from './watch-record.js';

export abstract class EngineWatch extends EngineResume {
  private get queryTarget() {
    return queryTargetOf(this.opts.namespace, this.opts.names);
  }

  /**
   * Stable over spec.postPromotion.baseline before the rollout, recorded at the start so the
   * watch (and `status`) compare with what stable did before anything changed.
   */
  protected async measureBaseline(): Promise<StableFigures | undefined> {
    const { policy, ports } = this.opts;
    const watch = policy.postPromotion;
    if (!watch) return undefined;
    const at = new Date(this.now() - (this.opts.evaluationDelayMs ?? 0));
    const figures = await measureStable(policy, this.queryTarget, ports.metrics, at, watch.baselineMs);
    const thin = figures.requests === null || figures.requests < policy.analysis.minRequests;
    this.log(
      thin ? 'warn' : 'info',
      `post-promotion baseline: stable over the ${formatDuration(watch.baselineMs)} before the rollout: ${describeFigures(figures)}${thin ? `; too few requests (at least ${policy.analysis.minRequests}): the watch can apply only the fixed caps (max), never a comparison with the baseline` : ''}`,
    );
    return figures;
  }

  protected async watchAfterPromotion(): Promise<Outcome> {
    const { policy, clock, signal, image } = this.opts;
    const settings = policy.postPromotion!;
    const startMs = this.now();
    // Kept from a resumed record: the watch ends when it was planned to, whoever runs it.
    const watch: WatchProgress = this.record.watch ?? {
      startedAt: new Date(startMs).toISOString(),
      endsAt: new Date(startMs + settings.durationMs).toISOString(),
      intervalMs: settings.intervalMs,
      previousImage: this.record.images.stable,
      image,
      checks: 0,
      passed: 0,
      failed: 0,
      inconclusive: 0,
      breachesInRow: 0,
      failureLimit: settings.failureLimit,
    };
    this.record.watch = watch;
    this.record.images.stable = image;
    this.setPhase('watching', `promoted ${image}; watching stable for ${formatDuration(settings.durationMs)} against its baseline before the rollout (set back to ${watch.previousImage ?? 'the previous image'} on ${settings.failureLimit} breaching check${settings.failureLimit === 1 ? '' : 's'} in a row)`);
    await this.persist();
    const baseline = this.record.baseline;
    const metrics = watchMetrics(policy);
    const endMs = Date.parse(watch.endsAt);
    const ticks = new TickSchedule(startMs, settings.intervalMs);
    let breach: string | null = null;
    try {
      while (ticks.next <= endMs) {
        await clock.sleep(Math.max(0, ticks.next - this.now()), signal);
        this.throwIfCancelled();
        const atMs = ticks.next - (this.opts.evaluationDelayMs ?? 0);
        // No window may start before stable took all traffic on the new image.
        if (atMs - settings.intervalMs < startMs) {
          ticks.advance(this.now());
          continue;
        }
        const figures = await measureStable(policy, this.queryTarget, this.opts.ports.metrics, new Date(atMs), settings.intervalMs);
        const judged = baseline
          ? judgeWatch(metrics, baseline, figures, policy.analysis.minRequests)
          : { verdict: 'inconclusive' as const, results: [] };
        watch.checks += 1;
        if (judged.verdict === 'pass') {
          watch.passed += 1;
          watch.breachesInRow = 0;
        } else if (judged.verdict === 'fail') {
          watch.failed += 1;
          watch.breachesInRow += 1;
        } else watch.inconclusive += 1;
        watch.latest = { at: new Date(atMs).toISOString(), verdict: judged.verdict, figures, results: judged.results };
        const why = judged.results.filter((r) => r.verdict !== 'pass').map((r) => `${r.metric}: ${r.reason}`);
        const left = Math.max(0, endMs - this.now());
        this.log(
          judged.verdict === 'fail' ? 'error' : judged.verdict === 'inconclusive' ? 'warn' : 'info',
          `post-promotion check ${watch.checks} (${formatDuration(Math.ceil(left / 1000) * 1000)} left): ${judged.verdict.toUpperCase()} · stable ${describeFigures(figures)}${baseline ? ` vs ${describeFigures(baseline)} before the rollout` : ''}${why.length ? ` · ${why.join('; ')}` : ''}`,
        );
        if (judged.verdict === 'fail' && watch.breachesInRow >= settings.failureLimit) {
          const count = settings.failureLimit > 1 ? ` (${watch.breachesInRow} breaching checks in a row)` : '';
          breach = `${judged.results.filter((r) => r.verdict === 'fail').map((r) => `${r.metric}: ${r.reason}`).join('; ')}${count}`;
          break;
        }
        // A conflict here is an operator's `canary rollback` (it sets stable back): exit 4.
        await this.persist();
        ticks.advance(this.now());
      }
    } catch (err) {
      const halt = err instanceof Halt ? err : this.cancellation();
      if (halt?.byOperator || halt?.takenOver) throw halt;
      // The promotion stands: a watch that cannot go on ends, says why, and never rolls back.
      const why = halt ? halt.message : messageOf(err);
      const code = halt ? halt.exitCode : err instanceof CanaryError ? err.exitCode : EXIT.unexpected;
      watch.result = 'ended-early';
      this.log('warn', `the post-promotion watch ended early after ${watch.checks} check${watch.checks === 1 ? '' : 's'}: ${why}; stable keeps ${image}`);
      return this.finishPromotion(`${promotionReason(countsOf(this.record).total)}; the post-promotion watch ended early after ${watch.checks} checks (${watch.passed} passed, ${watch.inconclusive} inconclusive, ${watch.failed} breached): ${why}`, code);
    }
    if (breach !== null) return this.breached(breach);
    // Too little traffic to judge is never a rollback, but it is not a pass either: say which.
    watch.result = watch.passed > 0 ? 'passed' : 'inconclusive';
    const counts = `${watch.checks} checks over ${formatDuration(settings.durationMs)} (${watch.passed} passed, ${watch.inconclusive} inconclusive, ${watch.failed} breached)`;
    const summary =
      watch.result === 'passed'
        ? `post-promotion watch: ${counts}, no ${settings.failureLimit > 1 ? `${settings.failureLimit} breaches in a row` : 'breach'}`
        : `post-promotion watch: ${counts}: no check could judge stable, so the promotion stands unproven`;
    if (watch.result === 'inconclusive') this.log('warn', summary);
    return this.finishPromotion(`${promotionReason(countsOf(this.record).total)}; ${summary}`, EXIT.ok);
  }

  /** The rollback after a breach; a failure that is not someone else's stop is reported with the breach, never as a promotion. */
  private async breached(reason: string): Promise<Outcome> {
    try {
      return await this.rollBackAfterPromotion(reason);
    } catch (err) {
      if (err instanceof Halt && (err.byOperator || err.takenOver)) throw err;
      const why = messageOf(err);
      this.log('error', `the post-promotion watch found a breach but could not set stable back: ${why}`);
      const outcome = await this.finish(
        'failed',
        'failed',
        `the post-promotion watch found a breach (${reason}) but could not record the rollback or set stable back: ${why}; stable still runs ${this.opts.image}; set it back with \`${rollbackHint(this.ctx)}\``,
        err instanceof CanaryError ? err.exitCode : EXIT.unexpected,
        `all traffic on stable, which still runs ${this.opts.image}`,
      );
      await this.openIncidents();
      return outcome;
    }
  }

  /**
   * A second signal during the watch: the promotion is done in the cluster, so the process ends
   * the watch, never the promotion (no stop, no stable restore), and records that it ended early.
   */
  override async recordForcedExit(budgetMs = 1500): Promise<void> {
    const watch = this.record?.watch;
    if (!this.hasRecord || this.record.phase !== 'watching' || !watch) return super.recordForcedExit(budgetMs);
    watch.result = 'ended-early';
    this.record.phase = 'promoted';
    delete this.record.promotion;
    this.record.outcome = {
      result: 'promoted',
      reason: `${promotionReason(countsOf(this.record).total)}; the post-promotion watch ended early after ${watch.checks} checks: exited on a second signal`,
      at: this.iso(),
      exitCode: EXIT.aborted,
      traffic: 'all traffic on stable, which now runs the new image',
    };
    await this.persistQuietly();
  }

  /**
   * `--resume` of a deploy that died while its watch set stable back: the same rollback, taken on
   * from the record (its write to stable is conditional and idempotent).
   */
  protected async resumeRollbackAfterPromotion(stored: StoredRecord): Promise<Outcome> {
    this.record = stored.record;
    this.hasRecord = true;
    this.version = stored.version;
    this.routed = true;
    this.pastNoReturn = true;
    this.record.resumedBy = this.opts.startedBy;
    this.emit({ type: 'started', at: this.now(), record: this.record, resumed: true });
    const reason = this.record.rollback?.reason ?? 'the post-promotion watch found a breach';
    this.log('info', `resuming rollout ${this.record.id}: its post-promotion watch was setting stable back (${reason}); finishing it`);
    try {
      return await this.rollBackAfterPromotion(reason);
    } catch (err) {
      return this.halt(this.asHalt(err));
    }
  }

  /**
   * A breach after promotion: recorded first (an operator's rollback in between wins, and this
   * deploy exits 4), then stable set back to the previous image with a conditional write and
   * waited for, recorded, and the incident opened.
   */
  protected async rollBackAfterPromotion(reason: string): Promise<Outcome> {
    const watch = this.record.watch!;
    const previous = watch.previousImage;
    const requestedBy = `deploy ${this.record.id} (post-promotion watch)`;
    this.log('error', `post-promotion watch: ${reason}; setting stable back to ${previous ?? 'the previous image'}`);
    this.record.phase = 'rolling-back';
    watch.result = 'rolled-back';
    watch.rolledBackBy = requestedBy;
    this.record.rollback = { reason, requestedBy, at: this.iso(), stableRestore: { image: previous, done: false, message: 'pending' } };
    await this.persist();
    const ours = this.version;
    const workloads = this.opts.stop?.workloads ?? this.opts.ports.workloads;
    // Only a dry-run or a backtest (no cluster: verifyStable says it looked at nothing) lacks the image.
    const simulated = previous === null && (await workloads.verifyStable().catch(() => null))?.verified === false;
    if (simulated) this.log('info', 'dry-run: would set the stable Deployment back to the image it ran before the rollout (a dry-run does not know it), and wait until fully available');
    const restore = simulated ? { image: previous, done: true, message: 'stable set back to the image it ran before the rollout (simulated)' } : await restorePreviousImage({
      workloads,
      image: previous,
      names: this.opts.names,
      ctx: this.ctx,
      marker: `rolled back after promotion by ${requestedBy} at ${this.iso()}: ${reason}`,
      fence: async () => {
        const now = await this.opts.ports.state.load();
        if (now?.version !== ours) {
          const by = now?.record.rollback?.requestedBy;
          throw new StopRequestedError(`rollout record ${this.record.id}`, `the rollout record changed since the watch wrote its rollback${by && by !== requestedBy ? ` (rolled back by ${by})` : ''}`);
        }
      },
    });
    if ('lost' in restore && restore.lost) {
      // The record or stable changed under us: whoever changed it owns the rollback now.
      throw new Halt('aborted', `rolled back after promotion by another stopper while the watch was setting stable back (${restore.lost})`, EXIT.aborted, true);
    }
    const kept = { image: restore.image, done: restore.done, message: restore.message };
    this.log(restore.done ? 'info' : 'error', restore.message);
    const stable = await workloads.verifyStable({ timeoutMs: this.opts.stop?.callTimeoutMs ?? 10_000 }).catch((err: unknown) => ({ available: false, message: `stable could not be verified: ${messageOf(err)}` }));
    this.record.rollback = {
      ...this.record.rollback,
      stableRestore: kept,
      ...('verified' in stable && stable.verified === false ? {} : { stableVerified: stable.available }),
      stableMessage: stable.message,
    };
    let outcome: Outcome;
    if (restore.done) {
      this.record.images.stable = previous;
      outcome = await this.finish('rolled-back-after-promotion', 'rolled-back-after-promotion', `rolled back after promotion by the post-promotion watch: ${reason}`, EXIT.rolledBackAfterPromotion, `all traffic on stable, which runs ${previous ?? 'the previous image'} again`);
    } else {
      outcome = await this.finish('failed', 'failed', `the post-promotion watch found a breach (${reason}) but stable was not set back: ${restore.message}`, EXIT.unexpected, `all traffic on stable, which still runs ${this.opts.image}`);
    }
    await this.openIncidents();
    return outcome;
  }
}
