// The Lease of a deploy that a stop has ended: `canary rollback` deletes it once traffic is at
// 0%, so a new deploy (after a SIGKILL, say) does not wait for a dead process's lease to expire.
// A deploy still alive has seen the stop (its raise fails the fence, its next save conflicts).

import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { CallBudget, LeaseCleaner } from '../rollout/ports.js';
import { isNotFound, withKubeRetry, type RetryOptions } from './api-errors.js';
import { serverOf } from './connection.js';
import { leaseName } from './lease.js';

export class StoppedLeaseCleaner implements LeaseCleaner {
  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
    private readonly target: string,
    private readonly retry: RetryOptions = {},
  ) {}

  async clear(budget?: CallBudget): Promise<'deleted' | 'absent'> {
    const api = this.kc.makeApiClient(CoordinationV1Api);
    const name = leaseName(this.target);
    const namespace = this.namespace;
    const retry = { ...this.retry, server: serverOf(this.kc), ...(budget && { attempts: 1, timeoutMs: budget.timeoutMs, deadlineMs: budget.timeoutMs }) };
    try {
      await withKubeRetry(`deleting Lease ${namespace}/${name}`, (o) => api.deleteNamespacedLease({ name, namespace }, o), retry);
      return 'deleted';
    } catch (err) {
      if (isNotFound(err)) return 'absent';
      throw err;
    }
  }
}
