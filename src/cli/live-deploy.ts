import { requestDataMissing } from '../analysis/traffic.js';
import { CheckContext } from '../analysis/check-context.js';
import { prometheusClientFromSettings, type PrometheusClient } from '../analysis/prometheus-client.js';
import { queryTargetOf, type QueryTarget } from '../analysis/promql-template.js';
import { maybeRecording } from '../analysis/recording.js';
import type { MetricsSource } from '../analysis/types.js';
import { CanaryError, invalidInput } from '../errors.js';
import { kubeRetryOf } from '../k8s/api-errors.js';
import { ConfigMapStateStore } from '../k8s/configmap-state-store.js';
import { connect, type KubeConnection } from '../k8s/connection.js';
import { DeploymentWorkloads } from '../k8s/deployment-workloads.js';
import { KubeEventsReporter } from '../k8s/kube-events-reporter.js';
import { LeaseHeldError, leaseHolderIdentity, RolloutLease } from '../k8s/lease.js';
import { preflight } from '../k8s/preflight.js';
import { createTrafficRouter, httpRouteOf, routerOf } from '../k8s/router-factory.js';
import { targetNames, type Policy, type TargetNames } from '../policy/policy.js';
import { resumeHint, rollbackHint } from '../rollout/abort.js';
import { formatDuration } from '../policy/units.js';
import { systemClock } from '../rollout/clock.js';
import { RolloutEngine, rolloutIdFor } from '../rollout/engine.js';
import { fanOut, type Reporter } from '../rollout/events.js';
import type { IncidentSink } from '../rollout/ports.js';
import { FINAL_PHASES, type RolloutRecord } from '../rollout/record.js';
import { measureClockSkew, skewProblem } from './clock-skew.js';
import { onForcedExit } from './forced-exit.js';
import { smokeTesterFor } from './smoke-wiring.js';
import { CommandHookRunner } from '../hooks/command-runner.js';

export interface LiveDeployOptions {
  target: string;
  namespace?: string;
  image: string;
  policy: Policy;
  kubeconfig?: string;
  context?: string;
  /** The policy file given with -p, for hints that must work pasted as is. */
  policyPath?: string;
  prometheus?: string;
  record?: string;
  resume: boolean;
  /** --retry: the last record must be a rolled-back or aborted rollout of the same image. */
  retry?: boolean;
  startedBy: string;
  /** The lease holder identity; default leaseHolderIdentity() (run, attempt, host, pid, random). */
  holder?: string;
  reporter: Reporter;
  incidents: IncidentSink[];
  signal?: AbortSignal;
  onCancel?: 'rollback' | 'leave';
}

/**
 * Asks Prometheus the rollout's `requests` query for canary and stable once, now, before anything
 * is written: a wrong URL or query is a problem to list (exit 2), an unreachable Prometheus is
 * exit 5, and either way the cluster is untouched.
 */
async function checkPrometheus(policy: Policy, source: MetricsSource, name: string, target: QueryTarget): Promise<string | undefined> {
  const ctx = new CheckContext(policy, target, source, new Date(), 0, 0);
  // A policy without a requests query still proves the URL answers PromQL.
  const sides = policy.analysis.queries['requests'] !== undefined ? [ctx.render('requests', 'canary'), ctx.render('requests', 'stable')] : ['vector(1)'];
  try {
    for (const promql of sides) await ctx.result(promql);
    // Stable serves traffic before any canary exists: nothing for it means the queries look in
    // the wrong place, and the rollout would only ever be inconclusive.
    const missing = policy.analysis.queries['requests'] !== undefined ? await requestDataMissing(ctx, ['stable']) : null;
    return missing ?? undefined;
  } catch (err) {
    if (!(err instanceof CanaryError)) throw err;
    if (err.kind === 'unreachable') {
      throw new CanaryError('unreachable', `cannot start a rollout of ${name} in namespace ${target.namespace}: Prometheus: ${err.message}; nothing was changed`);
    }
    return `Prometheus: ${err.message}`;
  }
}

/** Refuses a runner whose clock is too far from Prometheus's for the windows to mean anything. */
async function checkClockSkew(policy: Policy, client: PrometheusClient): Promise<string | undefined> {
  try {
    const skew = await measureClockSkew(() => client.serverTime());
    return skewProblem(skew, policy.analysis.windowMs, client.displayUrl);
  } catch (err) {
    if (!(err instanceof CanaryError)) throw err;
    return `Prometheus: could not read its clock with time(): ${err.message}`;
  }
}

/**
 * A held lease seen once cannot tell a running deploy from a dead one (only watching it for a lease
 * duration can): with an unfinished record, say both ways out, as commands that work pasted.
 */
async function heldLeaseRefusal(held: LeaseHeldError, state: ConfigMapStateStore, opts: LiveDeployOptions, namespace: string): Promise<CanaryError> {
  const stored = await state.load().catch(() => null);
  const r = stored?.record;
  if (!r || FINAL_PHASES.includes(r.phase)) return held;
  const ctx = {
    target: opts.target,
    namespace,
    ...(opts.context !== undefined && { context: opts.context }),
    ...(opts.kubeconfig !== undefined && { kubeconfig: opts.kubeconfig }),
    ...(opts.policyPath !== undefined && { policyPath: opts.policyPath }),
  };
  return invalidInput(
    `a rollout of ${opts.target} (${r.id}, image ${r.images.canary}) is in phase ${r.phase} at step ${r.stepIndex + 1} (${r.weight}%), and its lease is held by ${held.holder} (${held.renewTime}): ` +
      `if that deploy is running, wait for it to finish; if it stopped without finishing, continue it with \`${resumeHint(ctx, r.images.canary)}\` ` +
      `(which takes the lease over once nobody has renewed it for ${formatDuration(held.durationSeconds * 1000)}) or stop it with \`${rollbackHint(ctx)}\``,
  );
}

/**
 * What `--retry` starts again: the last rollout of the target, only when it was rolled back or
 * aborted and was of the same image (exit 2 otherwise, nothing changed). Returns its id.
 */
export function retryTarget(last: RolloutRecord | undefined, target: string, namespace: string, image: string): string {
  if (!last) throw invalidInput(`--retry: there is no previous rollout of ${target} in namespace ${namespace} to retry; deploy without --retry`);
  if (last.phase !== 'rolled-back' && last.phase !== 'aborted') {
    const why = FINAL_PHASES.includes(last.phase) ? `it ended ${last.phase}` : `it is still ${last.phase} (continue it with --resume, or stop it with \`canary rollback\`)`;
    throw invalidInput(`--retry: the last rollout of ${target} (${last.id}, image ${last.images.canary}) cannot be retried: ${why}; only a rolled-back or aborted rollout is started again`);
  }
  if (last.images.canary !== image) {
    throw invalidInput(`--retry: the last rollout of ${target} (${last.id}) was of image ${last.images.canary}, not ${image}; --retry starts the same image again (deploy ${image} without --retry)`);
  }
  return last.id;
}

/**
 * A rollout against the cluster. Everything that can be checked is checked before the first
 * write: the metrics source, the objects, the permissions, the lease and any unfinished record.
 */
export async function liveDeploy(opts: LiveDeployOptions): Promise<number> {
  const conn = connect({ ...(opts.kubeconfig && { kubeconfig: opts.kubeconfig }), ...(opts.context && { context: opts.context }) });
  const namespace = opts.namespace ?? conn.defaultNamespace;
  const names = targetNames(opts.target, opts.policy.target);
  const client = prometheusClientFromSettings(opts.policy.prometheus, opts.prometheus);

  const queryTarget = queryTargetOf(namespace, names);
  try {
    return await deployWith(opts, conn, namespace, names, client, queryTarget);
  } finally {
    client.close();
  }
}

async function deployWith(
  opts: LiveDeployOptions,
  conn: KubeConnection,
  namespace: string,
  names: TargetNames,
  client: PrometheusClient,
  queryTarget: QueryTarget,
): Promise<number> {
  const prometheusProblem = (await checkPrometheus(opts.policy, client, opts.target, queryTarget)) ?? (await checkClockSkew(opts.policy, client));
  const kubeProblems = await preflight({
    kc: conn.kc,
    namespace,
    names,
    retry: kubeRetryOf(opts.policy.kubernetes),
    router: routerOf(opts.policy.traffic),
    httpRoute: httpRouteOf(opts.policy.traffic, opts.target),
  });
  const problems = prometheusProblem ? [prometheusProblem, ...kubeProblems] : kubeProblems;
  if (problems.length) {
    throw invalidInput(`cannot start a rollout of ${opts.target} in namespace ${namespace}; nothing was changed`, problems);
  }

  const k = opts.policy.kubernetes;
  const retry = kubeRetryOf(k);
  // Read before the first write: a smoke header from a missing env var is exit 2, nothing changed.
  const smoke = await smokeTesterFor(opts.policy, conn.kc, namespace, names, retry);
  // Likewise a hook's env from a missing variable or file.
  const hooks = opts.policy.hooks ? CommandHookRunner.forHooks(opts.policy.hooks) : undefined;
  const routerFor = (rolloutId: string, fenceToken?: string) =>
    createTrafficRouter(opts.policy.traffic, { kc: conn.kc, namespace, names, target: opts.target, rolloutId, retry, ...(fenceToken !== undefined && { fenceToken }) });
  // A foreign canary Ingress on our host and path is refused here, before the lease and the
  // record are written, so "nothing was changed" is true (prepare() checks again under the lease).
  await routerFor(rolloutIdFor(opts.target, Date.now())).verify();
  const state = new ConfigMapStateStore({ kc: conn.kc, namespace, target: opts.target, retry });
  // Losing the lease to another process: that process drives the rollout now, and this one stops
  // without touching traffic. Failing to renew it by the deadline: nobody has it yet, so this one
  // stops and sends traffic to stable before anyone could take over.
  const lost = new AbortController();
  const lease = new RolloutLease({
    kc: conn.kc,
    namespace,
    target: opts.target,
    // Unique per process: a re-run attempt, or a second deploy from this machine, is someone else.
    holder: opts.holder ?? leaseHolderIdentity(),
    durationSeconds: Math.max(1, Math.round(k.leaseDurationMs / 1000)),
    retry,
    onLost: (why: string, holder?: string) =>
      lost.abort(
        holder
          ? new CanaryError('taken-over', `${why}: that deploy now drives the rollout, so this one stops without touching traffic`)
          : new CanaryError('unreachable', `${why}: another deploy could take over, so this one stops`),
      ),
  });
  // A --resume follows a deploy that died: its lease is taken once seen unrenewed for a lease duration.
  try {
    await lease.acquire({
      waitForExpiry: opts.resume,
      ...(opts.signal && { signal: opts.signal }),
      onWait: (message) => opts.reporter.emit({ type: 'log', at: Date.now(), level: 'info', message }),
    });
  } catch (err) {
    throw err instanceof LeaseHeldError && !opts.resume ? await heldLeaseRefusal(err, state, opts, namespace) : err;
  }
  // Until a stop has confirmed 0% by a read, the lease stays: it expires on its own, or
  // `canary rollback` deletes it once traffic is safe.
  let leaseMayGo = () => true;
  try {
    const existing = await state.load();
    const unfinished = existing && !FINAL_PHASES.includes(existing.record.phase) ? existing : null;
    const hintCtx = {
      target: opts.target,
      namespace,
      ...(opts.context !== undefined && { context: opts.context }),
      ...(opts.kubeconfig !== undefined && { kubeconfig: opts.kubeconfig }),
      ...(opts.policyPath !== undefined && { policyPath: opts.policyPath }),
    };
    const retryOf = opts.retry ? retryTarget(existing?.record, opts.target, namespace, opts.image) : undefined;
    if (unfinished && !opts.resume) {
      const r = unfinished.record;
      throw invalidInput(
        `a rollout of ${opts.target} (${r.id}, image ${r.images.canary}) stopped in phase ${r.phase} at step ${r.stepIndex + 1} (${r.weight}%) without finishing; continue it with \`${resumeHint(hintCtx, r.images.canary)}\` or stop it with \`${rollbackHint(hintCtx)}\``,
      );
    }
    if (opts.resume && !unfinished) {
      throw invalidInput(`--resume: there is no unfinished rollout of ${opts.target} in namespace ${namespace} to continue`);
    }
    if (unfinished && unfinished.record.images.canary !== opts.image) {
      throw invalidInput(`--resume: the unfinished rollout is of image ${unfinished.record.images.canary}, not ${opts.image}`);
    }
    lease.startRenewing();

    const recording = maybeRecording(client, opts.record, { target: opts.target, namespace, startedAt: new Date().toISOString(), policy: opts.policy.name });
    const signals = [opts.signal, lost.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = AbortSignal.any(signals);
    const events = new KubeEventsReporter(conn.kc, namespace, names.stableDeployment);
    const rolloutId = unfinished?.record.id ?? rolloutIdFor(opts.target, Date.now());
    const engine = new RolloutEngine({
      policy: opts.policy,
      target: opts.target,
      namespace,
      names,
      image: opts.image,
      startedBy: opts.startedBy,
      rolloutId,
      ...(retryOf !== undefined && { retryOf }),
      ports: {
        router: routerFor(rolloutId, lease.fenceToken),
        workloads: new DeploymentWorkloads({
          kc: conn.kc,
          namespace,
          names,
          clock: systemClock,
          pollMs: k.pollIntervalMs,
          readyTimeoutMs: k.readyTimeoutMs,
          retry,
          signal,
        }),
        metrics: recording.source,
        state,
        incidents: opts.incidents,
        ...(smoke && { smoke: smoke.withSignal(signal) }),
        ...(hooks && { hooks }),
      },
      clock: systemClock,
      reporter: fanOut([opts.reporter, events]),
      signal,
      ...(opts.onCancel && { onCancel: opts.onCancel }),
      evaluationDelayMs: opts.policy.analysis.evaluationDelayMs,
      // The stop path's waits (stable set back during a promotion) must not be cut short by the
      // very cancellation that started the stop.
      stop: {
        // The stop machine's token: who drives a stop this deploy makes or takes on (holder + epoch).
        token: lease.fenceToken,
        // The stop writes only while the Lease is known to be ours (renewed within its renew
        // deadline, or renewed again since): past it, another deploy may own the rollout.
        mayAct: () => lease.actingRefusal(),
        deadlineMs: k.stopDeadlineMs,
        callTimeoutMs: k.timeoutMs,
        workloads: new DeploymentWorkloads({ kc: conn.kc, namespace, names, clock: systemClock, pollMs: k.pollIntervalMs, readyTimeoutMs: k.readyTimeoutMs, retry }),
      },
      commands: {
        ...(opts.context !== undefined && { context: opts.context }),
        ...(opts.kubeconfig !== undefined && { kubeconfig: opts.kubeconfig }),
        ...(opts.policyPath !== undefined && { policyPath: opts.policyPath }),
      },
    });
    leaseMayGo = () => engine.trafficSafe;
    const off = onForcedExit(async () => {
      await engine.recordForcedExit();
      // Traffic confirmed at 0%: the next deploy need not wait for this dead process's lease.
      if (engine.trafficSafe) await lease.release();
    });
    try {
      const outcome = await engine.run(unfinished ?? undefined);
      return outcome.exitCode;
    } finally {
      off();
      recording.save();
      smoke?.close();
      // Events still in flight would be lost when the process exits.
      await events.close();
    }
  } finally {
    if (leaseMayGo()) await lease.release();
  }
}
