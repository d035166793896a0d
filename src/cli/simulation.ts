import type { MetricsSource } from '../analysis/types.js';
import { MemoryCluster } from '../k8s/memory-cluster.js';
import { targetNames, type Policy } from '../policy/policy.js';
import { RolloutEngine } from '../rollout/engine.js';
import type { Reporter } from '../rollout/events.js';
import type { Clock, IncidentSink, Workloads } from '../rollout/ports.js';
import type { Outcome } from '../rollout/record.js';
import { onForcedExit } from './forced-exit.js';

export interface SimulationOptions {
  policy: Policy;
  target: string;
  namespace: string;
  image: string;
  startedBy: string;
  metrics: MetricsSource;
  clock: Clock;
  reporter: Reporter;
  signal?: AbortSignal;
  onCancel?: 'rollback' | 'leave';
  /** Sinks the engine opens incidents in after traffic is safe; none for a backtest. */
  incidents?: IncidentSink[];
  /** Print the writes a live rollout would make (dry-run), or keep quiet about them (backtest). */
  narrateWrites: boolean;
}

/** Runs the real engine against an in-memory cluster: the dry-run and the backtest. */
export async function runSimulation(opts: SimulationOptions): Promise<{ outcome: Outcome; cluster: MemoryCluster }> {
  const names = targetNames(opts.target, opts.policy.target);
  const cluster = new MemoryCluster(
    opts.namespace,
    names,
    null,
    opts.narrateWrites ? (message) => opts.reporter.emit({ type: 'log', at: opts.clock.now(), level: 'info', message }) : undefined,
  );
  // There is no stable Deployment to look at: say so rather than "verified available".
  const mode = opts.narrateWrites ? 'dry-run' : 'backtest';
  const workloads: Workloads = {
    stableImage: () => cluster.stableImage(),
    startCanary: (image) => cluster.startCanary(image),
    promoteStable: (image) => cluster.promoteStable(image),
    scaleDownCanary: () => cluster.scaleDownCanary(),
    verifyStable: () => Promise.resolve({ available: true, verified: false, message: `not verified (${mode})` }),
  };
  const engine = new RolloutEngine({
    policy: opts.policy,
    target: opts.target,
    namespace: opts.namespace,
    names,
    image: opts.image,
    startedBy: opts.startedBy,
    ports: { router: cluster, workloads, metrics: opts.metrics, state: cluster, incidents: opts.incidents ?? [] },
    clock: opts.clock,
    reporter: opts.reporter,
    ...(opts.signal && { signal: opts.signal }),
    ...(opts.onCancel && { onCancel: opts.onCancel }),
  });
  const off = onForcedExit(() => engine.recordForcedExit());
  try {
    return { outcome: await engine.run(), cluster };
  } finally {
    off();
  }
}
