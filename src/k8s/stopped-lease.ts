// The Lease of a deploy that a stop has ended: `canary rollback` deletes it once traffic is at
// 0%, so a new deploy (after a SIGKILL, say) does not wait for a dead process's lease to expire.
// Only the lease the stop saw is deleted (its resourceVersion and uid are the delete's
// preconditions): a live deploy renewing it has seen the stop and releases it itself, and a
// deploy that started after the stop keeps its own.

import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { CallBudget, LeaseCleaner, LeaseSeen } from '../rollout/ports.js';
import { isConflict, isNotFound, statusCode, withKubeRetry } from './api-errors.js';
import { serverOf } from './connection.js';
import { leaseName } from './lease.js';
import type { RetryPolicy } from '../retry.js';

export class StoppedLeaseCleaner implements LeaseCleaner {
  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
    private readonly target: string,
    private readonly retry: RetryPolicy = {},
  ) {}

  private get api(): CoordinationV1Api {
    return this.kc.makeApiClient(CoordinationV1Api);
  }

  private retryFor(budget?: CallBudget) {
    return { ...this.retry, server: serverOf(this.kc), ...(budget && { attempts: 1, timeoutMs: budget.timeoutMs, deadlineMs: budget.timeoutMs }) };
  }

  private async read(budget?: CallBudget): Promise<V1Lease | null> {
    const name = leaseName(this.target);
    try {
      return await withKubeRetry(`reading Lease ${this.namespace}/${name}`, (o) => this.api.readNamespacedLease({ name, namespace: this.namespace }, o), this.retryFor(budget));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async observe(budget?: CallBudget): Promise<LeaseSeen | null> {
    const lease = await this.read(budget);
    if (!lease) return null;
    return { holder: lease.spec?.holderIdentity ?? '', resourceVersion: lease.metadata?.resourceVersion ?? '', uid: lease.metadata?.uid ?? '' };
  }

  async clear(seen: LeaseSeen | null, budget?: CallBudget): Promise<{ result: 'deleted' | 'absent' } | { result: 'kept'; holder: string }> {
    const name = leaseName(this.target);
    const namespace = this.namespace;
    if (!seen) {
      const now = await this.read(budget);
      // Created after the stop began: a deploy that started since holds it.
      return now ? { result: 'kept', holder: now.spec?.holderIdentity ?? '' } : { result: 'absent' };
    }
    try {
      await withKubeRetry(
        `deleting Lease ${namespace}/${name}`,
        (o) => this.api.deleteNamespacedLease({ name, namespace, body: { preconditions: { resourceVersion: seen.resourceVersion, uid: seen.uid } } }, o),
        this.retryFor(budget),
      );
      return { result: 'deleted' };
    } catch (err) {
      if (isNotFound(err)) return { result: 'absent' };
      if (!(isConflict(err) || (err instanceof Error && statusCode(err.cause) === 409))) throw err;
      const now = await this.read(budget);
      return now ? { result: 'kept', holder: now.spec?.holderIdentity ?? '' } : { result: 'absent' };
    }
  }
}
