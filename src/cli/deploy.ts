import { maybeRecording, ReplaySource } from '../analysis/recording.js';
import { prometheusClientFromSettings, type PrometheusClient } from '../analysis/prometheus-client.js';
import type { MetricsSource } from '../analysis/types.js';
import { invalidInput } from '../errors.js';
import { loadPolicy } from '../policy/loader.js';
import { systemClock, VirtualClock } from '../rollout/clock.js';
import type { Clock } from '../rollout/ports.js';
import {
  makeIncidentSinks,
  makeReporter,
  parseImage,
  parseNamespace,
  parseOnCancel,
  parseOutput,
  parseTargetName,
  startedBy,
} from './common.js';
import { runSimulation } from './simulation.js';

export interface DeployFlags {
  image?: string;
  namespace?: string;
  policy?: string;
  dryRun?: boolean;
  replay?: string;
  prometheus?: string;
  record?: string;
  output?: string;
  verbose?: boolean;
  /** What a cancelled run (SIGTERM/SIGINT) does with the canary: "rollback" (default) or "leave". */
  onCancel?: string;
  /** false with --no-incident: open no incident even when the policy names sinks. */
  incident?: boolean;
  kubeconfig?: string;
  context?: string;
  resume?: boolean;
  /** Start again from the first step after a rolled-back or aborted rollout of the same image. */
  retry?: boolean;
  /** RFC 3339 time of the deployed commit, for the lead-time metric (or CANARY_COMMIT_TIME). */
  commitTime?: string;
  signal?: AbortSignal;
}

export async function deployCommand(name: string, flags: DeployFlags): Promise<number> {
  const target = parseTargetName(name);
  const image = parseImage(flags.image);
  const format = parseOutput(flags.output);
  const onCancel = parseOnCancel(flags.onCancel);
  if (flags.replay && !flags.dryRun) throw invalidInput('--replay: a recording can only drive a --dry-run; add --dry-run');
  if (flags.resume && flags.dryRun) throw invalidInput('--resume: only a live rollout can be resumed; drop --dry-run');
  if (flags.retry && flags.dryRun) throw invalidInput('--retry: only a live rollout can be retried; drop --dry-run');
  if (flags.retry && flags.resume) throw invalidInput('--retry and --resume: expected one; --resume continues an unfinished rollout, --retry starts a stopped one again from its first step');
  if (flags.replay && flags.prometheus) throw invalidInput('--replay and --prometheus: expected one source of metrics, got both');
  if (flags.replay && flags.record) throw invalidInput('--record: a replay already comes from a recording; record with --prometheus');
  const policy = loadPolicy(flags.policy);
  const incidents = makeIncidentSinks(policy, {
    enabled: flags.incident !== false,
    dryRun: Boolean(flags.dryRun),
    ...(flags.signal && { signal: flags.signal }),
  });

  if (!flags.dryRun) {
    const base = makeReporter(format, Boolean(flags.verbose), {
      ...(policy.dashboardUrl !== undefined && { dashboardUrl: policy.dashboardUrl }),
    });
    // Rollout and DORA metrics to the policy's Pushgateway (live rollouts only: a dry-run deploys
    // nothing); loaded only then, so prom-client stays out of every other run's start-up.
    const reporter =
      policy.metrics?.pushgateway || flags.commitTime !== undefined
        ? (await import('../report/pushgateway-reporter.js')).withPushgatewayFromFlags(base, policy.metrics, flags.commitTime)
        : base;
    try {
      // Imported here, not at the top: a dry-run never loads the Kubernetes client.
      const { liveDeploy } = await import('./live-deploy.js');
      return await liveDeploy({
        target,
        ...(flags.namespace !== undefined && { namespace: parseNamespace(flags.namespace) }),
        image,
        policy,
        ...(flags.kubeconfig !== undefined && { kubeconfig: flags.kubeconfig }),
        ...(flags.context !== undefined && { context: flags.context }),
        ...(flags.policy !== undefined && { policyPath: flags.policy }),
        ...(flags.prometheus !== undefined && { prometheus: flags.prometheus }),
        ...(flags.record !== undefined && { record: flags.record }),
        resume: Boolean(flags.resume),
        retry: Boolean(flags.retry),
        startedBy: startedBy(),
        reporter,
        incidents,
        ...(flags.signal && { signal: flags.signal }),
        onCancel,
      });
    } finally {
      await reporter.close?.();
    }
  }

  const namespace = parseNamespace(flags.namespace);

  let metrics: MetricsSource;
  let clock: Clock;
  let save: () => void = () => undefined;
  let client: PrometheusClient | undefined;
  if (flags.replay) {
    const replay = ReplaySource.fromFile(flags.replay);
    if (replay.meta.target !== target || replay.meta.namespace !== namespace) {
      throw invalidInput(
        `--replay ${flags.replay}: the recording is of ${replay.meta.target} in namespace ${replay.meta.namespace}, not ${target} in ${namespace}; run \`canary deploy ${replay.meta.target} -n ${replay.meta.namespace} ...\``,
      );
    }
    metrics = replay;
    clock = new VirtualClock(replay.startedAt.getTime());
  } else if (flags.prometheus || policy.prometheus.url) {
    client = prometheusClientFromSettings(policy.prometheus, flags.prometheus);
    clock = systemClock;
    const recording = maybeRecording(client, flags.record, { target, namespace, startedAt: new Date(clock.now()).toISOString(), policy: policy.name });
    metrics = recording.source;
    save = recording.save;
  } else {
    throw invalidInput('--dry-run: expected a metrics source: --replay FILE (a recording) or --prometheus URL');
  }

  const reporter = makeReporter(format, Boolean(flags.verbose), {
    dryRun: true,
    ...(policy.dashboardUrl !== undefined && { dashboardUrl: policy.dashboardUrl }),
  });
  try {
    const { outcome } = await runSimulation({
      policy,
      target,
      namespace,
      image,
      startedBy: startedBy(),
      metrics,
      clock,
      reporter,
      narrateWrites: true,
      incidents,
      onCancel,
      ...(flags.signal && { signal: flags.signal }),
    });
    return outcome.exitCode;
  } finally {
    await reporter.close?.();
    client?.close();
    save();
  }
}
