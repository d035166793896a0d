// The rollout engine, room by room (see engine.ts): what runs beside the steps before users or
// after the outcome — the smoke tests (header routing at 0%) and the policy's command hooks.

import { StopRequestedError } from './ports.js';
import type { Outcome } from './record.js';
import { EngineWatch } from './post-promotion-watch.js';
import { runSmokePhase, SmokeFailed } from './smoke-tests.js';
import { CanaryError, messageOf } from '../errors.js';
import { HookFailed, keepHookResults, runHookPoint, type HookContext } from './hooks.js';
import type { HookPoint } from '../policy/hooks-schema.js';

export abstract class EngineChecksBesideSteps extends EngineWatch {
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
  protected async hooks(at: Exclude<HookPoint, 'post-rollout'>, label: string): Promise<void> {
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
  protected async postRollout(outcome: Outcome): Promise<void> {
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
  protected async smoke(phase: string): Promise<void> {
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
}
