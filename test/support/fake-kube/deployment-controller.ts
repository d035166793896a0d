// A stand-in for kube-controller-manager's deployment controller: after a Deployment's spec
// changes it writes status (observedGeneration, replica counts, conditions) a little later, on a
// real timer, so clients must wait for a rollout the way they would on a cluster.

import { createHash } from 'node:crypto';
import type { ResourceType } from './discovery.js';
import type { ObjectStore } from './store.js';
import { deepEqual, isJsonObject, type JsonObject, type KubeObject } from './types.js';

/**
 * ready: all replicas become available. unready: pods are updated but never ready.
 * fail: as unready, and Progressing=False with reason ProgressDeadlineExceeded.
 * frozen: the controller never observes the deployment (observedGeneration lags).
 */
export type DeploymentBehavior = 'ready' | 'unready' | 'fail' | 'frozen';

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function replicaSetName(deployment: KubeObject): string {
  const spec = isJsonObject(deployment['spec']) ? deployment['spec'] : {};
  const hash = createHash('sha1').update(JSON.stringify(spec['template'] ?? {})).digest('hex').slice(0, 10);
  return `${deployment.metadata?.name ?? ''}-${hash}`;
}

function condition(type: string, status: string, reason: string, message: string, previous: unknown): JsonObject {
  const prior = Array.isArray(previous)
    ? previous.find((c) => isJsonObject(c) && c['type'] === type && c['status'] === status)
    : undefined;
  const transition = isJsonObject(prior) && typeof prior['lastTransitionTime'] === 'string' ? prior['lastTransitionTime'] : now();
  return { type, status, lastUpdateTime: now(), lastTransitionTime: transition, reason, message };
}

/** The status the controller converges to; zero counts are omitted, as the real API does. */
export function settledStatus(deployment: KubeObject, behavior: Exclude<DeploymentBehavior, 'frozen'>): JsonObject {
  const spec = isJsonObject(deployment['spec']) ? deployment['spec'] : {};
  const replicas = typeof spec['replicas'] === 'number' ? spec['replicas'] : 1;
  const previous = isJsonObject(deployment['status']) ? deployment['status']['conditions'] : undefined;
  const rs = replicaSetName(deployment);
  const counts: Record<string, number> =
    behavior === 'ready'
      ? { replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas }
      : { replicas, updatedReplicas: replicas, unavailableReplicas: replicas };
  const status: JsonObject = { observedGeneration: deployment.metadata?.generation ?? 1 };
  for (const [key, value] of Object.entries(counts)) if (value !== 0) status[key] = value;
  const available =
    behavior === 'ready' || replicas === 0
      ? condition('Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.', previous)
      : condition('Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.', previous);
  const progressing =
    behavior === 'ready'
      ? condition('Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${rs}" has successfully progressed.`, previous)
      : behavior === 'unready'
        ? condition('Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${rs}" is progressing.`, previous)
        : condition('Progressing', 'False', 'ProgressDeadlineExceeded', `ReplicaSet "${rs}" has timed out progressing.`, previous);
  status['conditions'] = [available, progressing];
  return status;
}

export class DeploymentController {
  private readonly behaviors = new Map<string, DeploymentBehavior>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: ObjectStore,
    private readonly rt: ResourceType,
    private readonly options: { enabled: boolean; delayMs: number },
  ) {
    this.unsubscribe = store.onChange((change) => {
      if (change.rt !== rt) return;
      const { namespace = '', name = '' } = change.object.metadata ?? {};
      if (change.type === 'DELETED') {
        this.cancel(namespace, name);
        return;
      }
      const status = isJsonObject(change.object['status']) ? change.object['status'] : {};
      if (status['observedGeneration'] !== change.object.metadata?.generation) this.schedule(namespace, name);
    });
  }

  behaviorOf(namespace: string, name: string): DeploymentBehavior {
    return this.behaviors.get(`${namespace}/${name}`) ?? 'ready';
  }

  setBehavior(namespace: string, name: string, behavior: DeploymentBehavior): void {
    this.behaviors.set(`${namespace}/${name}`, behavior);
    this.schedule(namespace, name);
  }

  /** Resolves once no reconcile is pending. */
  idle(): Promise<void> {
    if (this.timers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.unsubscribe();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.wakeIdle();
  }

  private schedule(namespace: string, name: string): void {
    if (!this.options.enabled) return;
    const key = `${namespace}/${name}`;
    const existing = this.timers.get(key);
    if (existing) clearTimeout(existing);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.reconcile(namespace, name);
      this.wakeIdle();
    }, this.options.delayMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  private cancel(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const timer = this.timers.get(key);
    if (timer) clearTimeout(timer);
    this.timers.delete(key);
    this.wakeIdle();
  }

  private wakeIdle(): void {
    if (this.timers.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private reconcile(namespace: string, name: string): void {
    const behavior = this.behaviorOf(namespace, name);
    if (behavior === 'frozen') return;
    const current = this.store.get(this.rt, namespace, name);
    if (!current) return;
    const status = settledStatus(current, behavior);
    const comparable = (s: unknown): unknown =>
      isJsonObject(s) && Array.isArray(s['conditions'])
        ? { ...s, conditions: s['conditions'].map((c) => (isJsonObject(c) ? { ...c, lastUpdateTime: '', lastTransitionTime: '' } : c)) }
        : s;
    if (deepEqual(comparable(current['status']), comparable(status))) return;
    current['status'] = status;
    this.store.write(this.rt, current);
  }
}
