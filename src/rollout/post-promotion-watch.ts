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
import { STOP_STATES, type StopReport, type StopRequest } from './stop-machine.js';
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

  /**
   * A breach after promotion: the stop machine is asked for a rollback after promotion (stable
   * back to the image it ran before the rollout, conditional on stable's resourceVersion and on
   * this deploy still holding the stop), like every other stop: resumable from the state it
   * reaches, and an operator's `canary rollback` in between takes it on (this deploy exits 4).
   */
  private async breached(reason: string): Promise<Outcome> {
    const previous = this.record.watch!.previousImage;
    this.log('error', `post-promotion watch: ${reason}; setting stable back to ${previous ?? 'the previous image'}`);
    const stoppedFor = `rolled back after promotion by the post-promotion watch: ${reason}`;
    const request: StopRequest = { requestedBy: `deploy ${this.record.id} (post-promotion watch)`, reason: stoppedFor, result: 'rolled-back-after-promotion' };
    let report: StopReport | null = null;
    let why: string;
    try {
      report = await this.requestOwnStop(request, `rollback after promotion: ${reason}`);
      if (report.lostTo && !report.operatorAbort) report = await this.operatorsTakeover(report);
      if (report.lostTo || report.operatorAbort || (report.state === 'released' && this.record.outcome)) return this.reportStop(report, stoppedFor);
      why = `the rollback after promotion is left in state ${report.state}`;
    } catch (err) {
      why = messageOf(err);
    }
    // Never reported as a promotion: the breach, where stable is, and the command that finishes it.
    const runs = await (this.opts.stop?.workloads ?? this.opts.ports.workloads).stableImage().catch(() => null);
    this.log('error', `the post-promotion watch found a breach but could not set stable back: ${why}`);
    const outcome = this.finished({
      result: 'failed',
      reason: `the post-promotion watch found a breach (${reason}) but could not record the rollback or set stable back: ${why}; stable runs ${runs ?? 'an image that could not be read'}; set it back with \`${rollbackHint(this.ctx)}\``,
      at: this.iso(),
      exitCode: report && report.exitCode !== EXIT.ok ? report.exitCode : EXIT.unexpected,
      traffic: `all traffic on stable, which still runs ${runs ?? this.opts.image}`,
    }, false);
    // Incidents are opened once a stop is recorded; a stop that never got there still opens one.
    if (!report || STOP_STATES.indexOf(report.state) < STOP_STATES.indexOf('recorded')) await this.openIncidents();
    return outcome;
  }

  /** A stop taken on by `canary rollback` during the watch is reported as the operator's rollback, in their words. */
  private async operatorsTakeover(report: StopReport): Promise<StopReport> {
    const now = await this.opts.ports.state.load().catch(() => null);
    const rb = now?.record.rollback;
    if (now?.record.watch?.result !== 'rolled-back-by-operator' || !rb) return report;
    return { ...report, operatorAbort: `rolled back by an operator by ${rb.requestedBy}: ${rb.reason}` };
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
}
