import { plannedChecks } from '../policy/policy.js';
import { StopRequestedError, type StoredRecord } from './ports.js';
import { rolloutIdFor } from './rollout-id.js';
import { emptyTallies, RECORD_SCHEMA_VERSION, type Outcome } from './record.js';
import { EngineWatch } from './post-promotion-watch.js';
import { runSmokePhase, SmokeFailed } from './smoke-tests.js';
import { CanaryError, messageOf } from '../errors.js';
import { unfinishedStop } from './stop-machine.js';
import { HookFailed, keepHookResults, runHookPoint, type HookContext } from './hooks.js';
import type { HookPoint } from '../policy/hooks-schema.js';

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
 * halting.ts (stops), resume.ts, post-promotion-watch.ts; this file runs a rollout from start to end.
 */
export class RolloutEngine extends EngineWatch {
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

  private hookContext(at: HookPoint, outcome?: Outcome): HookContext {
    const r = this.record;
    return {
      target: this.opts.target,
      namespace: this.opts.namespace,
      image: this.opts.image,
      stableImage: r.images.stable,
      rolloutId: r.id,
      at,
      phase: r.phase,
      step: r.steps.length === 0 ? 0 : r.stepIndex + 1,
      steps: this.opts.policy.steps.length,
      weight: this.weight,
      ...(outcome && { outcome: { result: outcome.result, exitCode: outcome.exitCode, reason: outcome.reason } }),
    };
  }

  /**
   * The policy's hooks for one point before the outcome. A failure is a HookFailed Halt (rolled
   * back, exit 3) through the one stop path, its result kept in the record as evidence.
   */
  private async hooks(at: Exclude<HookPoint, 'post-rollout'>, label: string): Promise<void> {
    const { policy, ports, signal } = this.opts;
    if (!policy.hooks?.some((h) => h.at === at)) return;
    try {
      const results = await runHookPoint({
        hooks: policy.hooks,
        context: this.hookContext(at),
        label,
        ...(ports.hooks && { runner: ports.hooks }),
        ...(signal && { signal }),
        log: (level, message) => this.log(level, message),
        throwIfCancelled: () => this.throwIfCancelled(),
      });
      if (results.length === 0) return;
      this.record.hooks = keepHookResults(this.record.hooks, results);
      await this.persist();
    } catch (err) {
      if (err instanceof HookFailed) this.record.hooks = keepHookResults(this.record.hooks, err.results);
      throw err;
    }
  }

  /**
   * post-rollout hooks, after any outcome: reported, never changing it. No cancellation signal
   * (the cancel already ended the rollout; each hook is still bounded by its timeout), and the
   * record is saved only if it is still ours (best effort, like every save after the outcome).
   */
  private async postRollout(outcome: Outcome): Promise<void> {
    const { policy, ports } = this.opts;
    if (!policy.hooks?.some((h) => h.at === 'post-rollout')) return;
    const results = await runHookPoint({
      hooks: policy.hooks,
      context: this.hookContext('post-rollout', outcome),
      label: 'post-rollout',
      ...(ports.hooks && { runner: ports.hooks }),
      log: (level, message) => this.log(level, message),
      throwIfCancelled: () => undefined,
    }).catch((err: unknown) => {
      this.log('warn', `post-rollout hooks could not run: ${messageOf(err)}; the outcome stands (${outcome.result})`);
      return [];
    });
    if (results.length === 0) return;
    this.record.hooks = keepHookResults(this.record.hooks, results);
    await this.persistQuietly();
  }

  /**
   * The policy's smoke tests against the canary. Before traffic, header routing is turned on at
   * 0% first (a fenced write, the canary being ready by now): only the smoke requests reach it. A
   * failure is a Halt (rolled back, exit 3) and goes through the one stop path like any other.
   */
  private async smoke(phase: string): Promise<void> {
    const { policy, ports } = this.opts;
    if (!policy.smokeTests) return;
    if (ports.smoke && this.weight === 0) {
      if (!ports.router.routeByHeader) throw new CanaryError('invalid-input', 'spec.smokeTests: this traffic router cannot route by header at 0%, so smoke tests cannot reach the canary before traffic');
      // Fenced like a raise: a stop that landed while the canary got ready is that stop.
      await ports.router.routeByHeader().catch((err: unknown) => {
        throw err instanceof StopRequestedError ? this.fencedOut(err) : err;
      });
      this.log('info', `header routing on at 0% for the smoke tests (${policy.target.headerRouting?.header ?? 'header'}); no user traffic reaches the canary`);
    }
    try {
      const run = await runSmokePhase({
        settings: policy.smokeTests,
        ...(ports.smoke && { tester: ports.smoke }),
        phase,
        now: () => this.iso(),
        log: (level, message) => this.log(level, message),
        throwIfCancelled: () => this.throwIfCancelled(),
      });
      if (!run) return;
      this.record.smokeTests = run;
      await this.persist();
    } catch (err) {
      if (err instanceof SmokeFailed) this.record.smokeTests = err.run;
      throw err;
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
