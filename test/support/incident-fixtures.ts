import type { RawAnswer, RawQuerier } from '../../src/analysis/prometheus-client.js';
import type { MetricsSource } from '../../src/analysis/types.js';
import { thresholdPolicy } from './policies.js';
import type { Policy } from '../../src/policy/policy.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import type { Reporter, RolloutEvent } from '../../src/rollout/events.js';
import type { IncidentSink } from '../../src/rollout/ports.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { checkoutEngine } from './checkout-engine.js';
import { healthy, ScriptedMetrics, type Scenario } from './scripted-metrics.js';
import { START } from './times.js';

// Rollouts that end the way incidents are about, made by the real engine so incident content is
// tested against records exactly as the engine writes them.

export { START } from './times.js';
export const RUN_URL = 'https://github.com/acme/shop/actions/runs/4242';

/** Canary error rate 12% (72 of 600) from minute 21, at 25%: rolled back at check 21. */
export const errorRegression: Scenario = (minute, side) =>
  side === 'canary' && minute > 20 ? { requests: 600, errors: 72, p95: 0.2, memory: 200e6, cpu: 0.1 } : healthy(minute, side);

/** Threshold judges, so each incident's failing checks follow from one window's numbers. */
export function policyFrom(yamlText = ''): Policy {
  return thresholdPolicy(yamlText);
}

export interface RunResult {
  record: RolloutRecord;
  events: RolloutEvent[];
  exitCode: number;
}

export async function runRollout(
  opts: { scenario?: Scenario; policy?: Policy; incidents?: IncidentSink[]; reporter?: Reporter; metrics?: MetricsSource; startedBy?: string } = {},
): Promise<RunResult> {
  const { engine, cluster, events } = checkoutEngine({
    policy: opts.policy ?? policyFrom(),
    metrics: opts.metrics ?? new ScriptedMetrics(START, opts.scenario ?? errorRegression),
    clock: new VirtualClock(START),
    incidents: opts.incidents ?? [],
    onEvent: (e) => opts.reporter?.emit(e),
    extra: { startedBy: opts.startedBy ?? RUN_URL },
  });
  const outcome = await engine.run();
  await opts.reporter?.close?.();
  const stored = await cluster.load();
  if (!stored) throw new Error('the engine stored no record');
  return { record: stored.record, events, exitCode: outcome.exitCode };
}

/** The record of a rollout the engine rolled back for a 12% canary error rate at 25%. */
export async function rolledBackRecord(): Promise<RolloutRecord> {
  return (await runRollout()).record;
}

/**
 * A RawQuerier that answers from a MetricsSource with Prometheus-shaped JSON, so RecordingSource
 * can record a scripted rollout into a recording file that `--replay` reads like a real one.
 */
export class ScriptedRawQuerier implements RawQuerier {
  readonly displayUrl = 'http://scripted.invalid';

  constructor(private readonly source: MetricsSource) {}

  async queryRaw(promql: string, at: Date): Promise<RawAnswer> {
    const result = await this.source.query(promql, at);
    const t = at.getTime() / 1000;
    return {
      status: 200,
      body: {
        status: 'success',
        data: { resultType: 'vector', result: result.samples.map((s) => ({ metric: s.labels, value: [t, String(s.value)] })) },
      },
    };
  }
}
