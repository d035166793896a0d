import { ReplaySource, RecordingSource, writeRecording } from '../analysis/recording.js';
import { prometheusClientFromSettings, type PrometheusClient } from '../analysis/prometheus-client.js';
import type { MetricsSource } from '../analysis/types.js';
import { invalidInput } from '../errors.js';
import { loadPolicy } from '../policy/loader.js';
import { systemClock, VirtualClock } from '../rollout/clock.js';
import type { Clock } from '../rollout/ports.js';
import { makeReporter, parseImage, parseNamespace, parseOutput, parseTargetName, startedBy } from './common.js';
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
  signal?: AbortSignal;
}

export async function deployCommand(name: string, flags: DeployFlags): Promise<number> {
  const target = parseTargetName(name);
  const namespace = parseNamespace(flags.namespace);
  const image = parseImage(flags.image);
  const format = parseOutput(flags.output);
  if (!flags.dryRun) {
    throw invalidInput(
      'live rollouts against a cluster are not in this build yet: add --dry-run (with --replay FILE or --prometheus URL)',
    );
  }
  if (flags.replay && flags.prometheus) throw invalidInput('--replay and --prometheus: expected one source of metrics, got both');
  if (flags.replay && flags.record) throw invalidInput('--record: a replay already comes from a recording; record with --prometheus');
  const policy = loadPolicy(flags.policy);

  let metrics: MetricsSource;
  let clock: Clock;
  let recorder: RecordingSource | undefined;
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
    recorder = flags.record
      ? new RecordingSource(client, { target, namespace, startedAt: new Date(clock.now()).toISOString(), policy: policy.name })
      : undefined;
    metrics = recorder ?? client;
  } else {
    throw invalidInput('--dry-run: expected a metrics source: --replay FILE (a recording) or --prometheus URL');
  }

  const reporter = makeReporter(format, Boolean(flags.verbose));
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
      ...(flags.signal && { signal: flags.signal }),
    });
    return outcome.exitCode;
  } finally {
    await reporter.close?.();
    client?.close();
    if (recorder && flags.record) writeRecording(flags.record, recorder.recording());
  }
}
