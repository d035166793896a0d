import { prometheusClientFromSettings } from '../analysis/prometheus-client.js';
import { RecordingSource, writeRecording } from '../analysis/recording.js';
import type { MetricsSource } from '../analysis/types.js';
import { CanaryError, invalidInput } from '../errors.js';
import { ConfigMapStateStore } from '../k8s/configmap-state-store.js';
import { connect } from '../k8s/connection.js';
import { DeploymentWorkloads } from '../k8s/deployment-workloads.js';
import { IngressRouter } from '../k8s/ingress-router.js';
import { KubeEventsReporter } from '../k8s/kube-events-reporter.js';
import { RolloutLease } from '../k8s/lease.js';
import { preflight } from '../k8s/preflight.js';
import { targetNames, type Policy } from '../policy/policy.js';
import { systemClock } from '../rollout/clock.js';
import { RolloutEngine, rolloutIdFor } from '../rollout/engine.js';
import { fanOut, type Reporter } from '../rollout/events.js';
import type { IncidentSink } from '../rollout/ports.js';
import { FINAL_PHASES } from '../rollout/record.js';
import { onForcedExit } from './forced-exit.js';

export interface LiveDeployOptions {
  target: string;
  namespace?: string;
  image: string;
  policy: Policy;
  kubeconfig?: string;
  context?: string;
  prometheus?: string;
  record?: string;
  resume: boolean;
  startedBy: string;
  reporter: Reporter;
  incidents: IncidentSink[];
  signal?: AbortSignal;
  onCancel?: 'rollback' | 'leave';
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

  const problems = await preflight({ kc: conn.kc, namespace, names, retry: { attempts: opts.policy.kubernetes.attempts, timeoutMs: opts.policy.kubernetes.timeoutMs } });
  if (problems.length) {
    throw invalidInput(`cannot start a rollout of ${opts.target} in namespace ${namespace}; nothing was changed`, problems);
  }

  const k = opts.policy.kubernetes;
  const retry = { attempts: k.attempts, timeoutMs: k.timeoutMs };
  const routerFor = (rolloutId: string) => new IngressRouter({ kc: conn.kc, namespace, names, target: opts.target, rolloutId, retry });
  // A foreign canary Ingress on our host and path is refused here, before the lease and the
  // record are written, so "nothing was changed" is true (prepare() checks again under the lease).
  await routerFor(rolloutIdFor(opts.target, Date.now())).verify();
  const state = new ConfigMapStateStore({ kc: conn.kc, namespace, target: opts.target, retry });
  // Losing the lease means another process may take over: stop as if cancelled.
  const lost = new AbortController();
  const lease = new RolloutLease({
    kc: conn.kc,
    namespace,
    target: opts.target,
    holder: opts.startedBy,
    durationSeconds: Math.max(1, Math.round(k.leaseDurationMs / 1000)),
    retry,
    onLost: (why: string) =>
      lost.abort(new CanaryError('unreachable', `lost the rollout lease (${why}): another deploy could take over, so this one stops`)),
  });
  await lease.acquire();
  try {
    const existing = await state.load();
    const unfinished = existing && !FINAL_PHASES.includes(existing.record.phase) ? existing : null;
    if (unfinished && !opts.resume) {
      const r = unfinished.record;
      throw invalidInput(
        `a rollout of ${opts.target} (${r.id}, image ${r.images.canary}) stopped in phase ${r.phase} at step ${r.stepIndex + 1} (${r.weight}%) without finishing; continue it with \`canary deploy ${opts.target} -n ${namespace} --image ${r.images.canary} --resume\` or stop it with \`canary rollback ${opts.target} -n ${namespace} --reason ...\``,
      );
    }
    if (opts.resume && !unfinished) {
      throw invalidInput(`--resume: there is no unfinished rollout of ${opts.target} in namespace ${namespace} to continue`);
    }
    if (unfinished && unfinished.record.images.canary !== opts.image) {
      throw invalidInput(`--resume: the unfinished rollout is of image ${unfinished.record.images.canary}, not ${opts.image}`);
    }
    lease.startRenewing();

    const recorder = opts.record
      ? new RecordingSource(client, { target: opts.target, namespace, startedAt: new Date().toISOString(), policy: opts.policy.name })
      : undefined;
    const metrics: MetricsSource = recorder ?? client;
    const signals = [opts.signal, lost.signal].filter((s): s is AbortSignal => s !== undefined);
    const rolloutId = unfinished?.record.id ?? rolloutIdFor(opts.target, Date.now());
    const engine = new RolloutEngine({
      policy: opts.policy,
      target: opts.target,
      namespace,
      names,
      image: opts.image,
      startedBy: opts.startedBy,
      rolloutId,
      ports: {
        router: routerFor(rolloutId),
        workloads: new DeploymentWorkloads({
          kc: conn.kc,
          namespace,
          names,
          clock: systemClock,
          pollMs: k.pollIntervalMs,
          readyTimeoutMs: k.readyTimeoutMs,
          retry,
        }),
        metrics,
        state,
        incidents: opts.incidents,
      },
      clock: systemClock,
      reporter: fanOut([opts.reporter, new KubeEventsReporter(conn.kc, namespace, names.stableDeployment)]),
      signal: AbortSignal.any(signals),
      ...(opts.onCancel && { onCancel: opts.onCancel }),
    });
    const off = onForcedExit(() => engine.recordForcedExit());
    try {
      const outcome = await engine.run(unfinished ?? undefined);
      return outcome.exitCode;
    } finally {
      off();
      if (recorder && opts.record) writeRecording(opts.record, recorder.recording());
    }
  } finally {
    client.close();
    await lease.release();
  }
}
