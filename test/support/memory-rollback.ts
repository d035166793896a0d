// `canary rollback`'s use case over an in-memory cluster, as the stop-machine tests drive it: the
// cluster is the router, the workloads and the record store; the Lease is one the operator saw,
// and `lease.released` counts the deletes.

import { VirtualClock } from '../../src/rollout/clock.js';
import type { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { operatorRollback, type OperatorRollbackPorts } from '../../src/rollout/operator-rollback.js';
import { targetNames } from '../../src/policy/policy.js';
import { START } from './times.js';

export const ROLLBACK_CTX = { target: 'checkout', namespace: 'shop' };

/** Counts the Lease deletes of the rollbacks (and deploys) a test runs against one cluster. */
export function leaseCounter(): { released: number } {
  return { released: 0 };
}

/** One `canary rollback checkout --reason pager` by `requestedBy`, a minute after START. */
export async function memoryRollback(cluster: MemoryCluster, opts: { lease?: { released: number }; requestedBy?: string } = {}) {
  const lease = opts.lease ?? leaseCounter();
  const ports: OperatorRollbackPorts = {
    router: cluster,
    workloads: cluster,
    loadRecord: async () => {
      const stored = await cluster.load();
      return stored ? { kind: 'found', stored } : { kind: 'missing' };
    },
    saveRecord: (r, v) => cluster.save(r, v),
    lease: {
      observe: async () => ({ holder: 'ci-1', resourceVersion: '7', uid: 'u' }),
      clear: async () => {
        lease.released += 1;
        return { result: 'deleted' };
      },
    },
    event: async () => undefined,
    openIncidents: async () => [],
  };
  const lines: string[] = [];
  const report = await operatorRollback(ports, {
    ctx: ROLLBACK_CTX,
    names: targetNames('checkout', {}),
    policy: { name: 'default', source: 'x', intervalMs: 60_000, steps: [] },
    reason: 'pager',
    requestedBy: opts.requestedBy ?? 'alice',
    clock: new VirtualClock(START + 60_000),
    deadlineMs: 30_000,
    callTimeoutMs: 10_000,
    incidents: true,
    say: (l) => lines.push(l),
  });
  return { report, lines, lease };
}
