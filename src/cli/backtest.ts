import { prometheusClientFromSettings } from '../analysis/prometheus-client.js';
import { maybeRecording } from '../analysis/recording.js';
import { loadPolicy } from '../policy/loader.js';
import { VirtualClock } from '../rollout/clock.js';
import { makeReporter, parseImage, parseNamespace, parseOutput, parseTargetName, parseTime, startedBy } from './common.js';
import { runSimulation } from './simulation.js';
import { invalidInput } from '../errors.js';

export interface BacktestFlags {
  namespace?: string;
  policy?: string;
  prometheus?: string;
  from?: string;
  record?: string;
  image?: string;
  description?: string;
  output?: string;
  verbose?: boolean;
}

/**
 * Replays history: the engine runs on a virtual clock from --from, asking Prometheus for every
 * check at the moment it would have happened, as if the rollout had started then.
 */
export async function backtestCommand(name: string, flags: BacktestFlags): Promise<number> {
  const target = parseTargetName(name);
  const namespace = parseNamespace(flags.namespace);
  const format = parseOutput(flags.output);
  if (!flags.from) throw invalidInput('--from: expected the time the simulated rollout starts, like "2026-01-15T10:00:00Z"');
  const from = parseTime(flags.from, '--from');
  const image = flags.image === undefined ? 'backtest' : parseImage(flags.image);
  const policy = loadPolicy(flags.policy);
  const client = prometheusClientFromSettings(policy.prometheus, flags.prometheus);
  const recording = maybeRecording(client, flags.record, {
    target,
    namespace,
    startedAt: new Date(from).toISOString(),
    policy: policy.name,
    ...(flags.description !== undefined && { description: flags.description }),
  });

  const reporter = makeReporter(format, Boolean(flags.verbose));
  try {
    const { outcome } = await runSimulation({
      policy,
      target,
      namespace,
      image,
      startedBy: startedBy(),
      metrics: recording.source,
      clock: new VirtualClock(from),
      reporter,
      narrateWrites: false,
    });
    return outcome.exitCode;
  } finally {
    await reporter.close?.();
    client.close();
    recording.save();
  }
}
