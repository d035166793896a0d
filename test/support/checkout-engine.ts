import type { MetricsSource } from '../../src/analysis/types.js';
import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { targetNames, type Policy } from '../../src/policy/policy.js';
import { RolloutEngine, type EngineOptions } from '../../src/rollout/engine.js';
import type { RolloutEvent } from '../../src/rollout/events.js';
import type { Clock, IncidentSink } from '../../src/rollout/ports.js';

export interface CheckoutEngineOptions {
  policy: Policy;
  metrics: MetricsSource;
  clock: Clock;
  cluster?: MemoryCluster;
  incidents?: IncidentSink[];
  onEvent?: (e: RolloutEvent, cluster: MemoryCluster) => void;
  /** Any other engine option (signal, onCancel, evaluationDelayMs, ...). */
  extra?: Partial<EngineOptions>;
}

/** The engine the unit tests drive: target checkout in shop, shop/checkout:1 → :2, on an in-memory cluster. */
export function checkoutEngine(opts: CheckoutEngineOptions): { engine: RolloutEngine; cluster: MemoryCluster; events: RolloutEvent[] } {
  const names = targetNames('checkout', opts.policy.target);
  const cluster = opts.cluster ?? new MemoryCluster('shop', names, 'shop/checkout:1');
  const events: RolloutEvent[] = [];
  const engine = new RolloutEngine({
    policy: opts.policy,
    target: 'checkout',
    namespace: 'shop',
    names,
    image: 'shop/checkout:2',
    startedBy: 'test',
    ports: { router: cluster, workloads: cluster, metrics: opts.metrics, state: cluster, incidents: opts.incidents ?? [] },
    clock: opts.clock,
    reporter: {
      emit: (e) => {
        events.push(e);
        opts.onEvent?.(e, cluster);
      },
    },
    ...opts.extra,
  });
  return { engine, cluster, events };
}
