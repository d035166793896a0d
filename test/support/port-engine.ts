import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { targetNames, type Policy } from '../../src/policy/policy.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import type { RolloutEvent } from '../../src/rollout/events.js';
import type { EnginePorts } from '../../src/rollout/persistence.js';
import { checkoutEngine } from './checkout-engine.js';
import { healthy, ScriptedMetrics, type Scenario } from './scripted-metrics.js';
import { START } from './times.js';

// The engine the tests of its optional ports (spec.hooks, spec.smokeTests) drive: the checkout
// rollout on an in-memory cluster, with a fake HookRunner or SmokeTester filled in when given.
// Without one the port is absent, as in a dry-run or replay.

export interface PortEngineOptions {
  hooks?: EnginePorts['hooks'];
  smoke?: EnginePorts['smoke'];
  /** What Prometheus answers, minute by minute; healthy unless given. */
  script?: Scenario;
  signal?: AbortSignal;
  /** A cluster prepared by the test (a record left by a dead deploy); a fresh one unless given. */
  cluster?: MemoryCluster;
}

export function portEngine(policy: Policy, opts: PortEngineOptions = {}) {
  const cluster = opts.cluster ?? new MemoryCluster('shop', targetNames('checkout', policy.target), 'shop/checkout:1');
  const metrics = new ScriptedMetrics(START, opts.script ?? healthy);
  const { hooks, smoke, signal } = opts;
  return checkoutEngine({
    policy,
    metrics,
    clock: new VirtualClock(START),
    cluster,
    extra: { ports: { router: cluster, workloads: cluster, metrics, state: cluster, incidents: [], ...(hooks && { hooks }), ...(smoke && { smoke }) }, ...(signal && { signal }) },
  });
}

/** The engine's log lines, in order. */
export const logMessages = (events: readonly RolloutEvent[]): string[] => events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
