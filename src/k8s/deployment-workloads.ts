// The canary and stable Deployments: set an image, scale, and wait the way `kubectl rollout
// status` does (observedGeneration caught up, every replica updated, ready and available).

import { AppsV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import type { TargetNames } from '../policy/policy.js';
import { formatDuration } from '../policy/units.js';
import { StopRequestedError, type CallBudget, type Clock, type ScaleDownResult, type StableStatus, type StableWriteGuard, type Workloads } from '../rollout/ports.js';
import { isConflict, isNotFound, statusCode, withKubeRetry } from './api-errors.js';
import { serverOf } from './connection.js';
import { STABLE_RESTORE_ANNOTATION } from './labels.js';
import type { RetryPolicy } from '../retry.js';

export interface DeploymentWorkloadsOptions {
  kc: KubeConfig;
  namespace: string;
  names: TargetNames;
  clock: Clock;
  /** How often a wait reads the Deployment (default 2 s). */
  pollMs?: number;
  /** How long a Deployment may take to become ready (default 10 min). */
  readyTimeoutMs?: number;
  retry?: RetryPolicy;
  /** Stops every wait when it aborts (a cancelled deploy, a lost lease): waits must not outlive the deploy. */
  signal?: AbortSignal;
}

export type { ScaleDownResult } from '../rollout/ports.js';

interface Progress {
  want: number;
  generationCurrent: boolean;
  updated: number;
  ready: number;
  available: number;
  total: number;
}

function progressOf(d: V1Deployment): Progress {
  const st = d.status ?? {};
  return {
    want: d.spec?.replicas ?? 1,
    generationCurrent: (st.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0),
    updated: st.updatedReplicas ?? 0,
    ready: st.readyReplicas ?? 0,
    available: st.availableReplicas ?? 0,
    total: st.replicas ?? 0,
  };
}

function isRolledOut(p: Progress): boolean {
  // total ≤ want: pods of the previous ReplicaSet are gone, as `kubectl rollout status` requires.
  return p.generationCurrent && p.updated === p.want && p.ready === p.want && p.available === p.want && p.total <= p.want;
}

function describeProgress(p: Progress): string {
  if (!p.generationCurrent) return `the deployment controller has not yet observed the change (${p.available} of ${p.want} replicas available)`;
  return `${p.available} of ${p.want} replicas available (${p.updated} updated, ${p.ready} ready)`;
}

export class DeploymentWorkloads implements Workloads {
  private readonly api: AppsV1Api;
  private readonly retry: RetryPolicy & { server: string };

  constructor(private readonly opts: DeploymentWorkloadsOptions) {
    this.api = opts.kc.makeApiClient(AppsV1Api);
    this.retry = { ...opts.retry, server: serverOf(opts.kc) };
  }

  /** On the stop path one call is one attempt, bounded by the time the stop has left. */
  private retryFor(budget?: CallBudget): RetryPolicy & { server: string } {
    if (!budget) return this.retry;
    const ms = Math.max(1, Math.min(this.retry.timeoutMs ?? 30_000, budget.timeoutMs));
    return { ...this.retry, attempts: 1, timeoutMs: ms, deadlineMs: ms };
  }

  private async read(name: string, role: 'stable' | 'canary', budget?: CallBudget): Promise<V1Deployment> {
    const { namespace } = this.opts;
    try {
      return await withKubeRetry(`reading Deployment ${namespace}/${name}`, (o) => this.api.readNamespacedDeployment({ name, namespace }, o), this.retryFor(budget));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const field = role === 'stable' ? 'stableDeployment' : 'canaryDeployment';
      throw new CanaryError('invalid-input', `the ${role} Deployment ${namespace}/${name} does not exist; name the right one in the policy's spec.target.${field}`);
    }
  }

  /** The container whose image the rollout changes: the named one, or the only one. */
  private container(d: V1Deployment): { name: string; image: string | null } {
    const { names, namespace } = this.opts;
    const containers = d.spec?.template.spec?.containers ?? [];
    const ref = `Deployment ${namespace}/${d.metadata?.name ?? ''}`;
    const list = containers.map((c) => c.name).join(', ');
    if (names.container !== undefined) {
      const found = containers.find((c) => c.name === names.container);
      if (!found) throw new CanaryError('invalid-input', `${ref} has no container named "${names.container}" (spec.target.container); it has: ${list || 'none'}`);
      return { name: found.name, image: found.image ?? null };
    }
    const [only, ...others] = containers;
    if (!only) throw new CanaryError('invalid-input', `${ref} has no containers`);
    if (others.length > 0) {
      throw new CanaryError('invalid-input', `${ref} has ${containers.length} containers (${list}); name the one to roll out in the policy's spec.target.container`);
    }
    return { name: only.name, image: only.image ?? null };
  }

  private async patch(name: string, body: object, strategy: PatchStrategy, what: string, budget?: CallBudget): Promise<void> {
    const { namespace } = this.opts;
    await withKubeRetry(what, (o) => this.api.patchNamespacedDeployment({ name, namespace, body }, setHeaderOptions('Content-Type', strategy, o)), this.retryFor(budget));
  }

  /** Waits until the Deployment runs its current spec on every replica; fails fast on a progress deadline. */
  private async waitRolledOut(name: string, role: 'stable' | 'canary'): Promise<void> {
    const { clock, namespace } = this.opts;
    const pollMs = this.opts.pollMs ?? 2000;
    const timeoutMs = this.opts.readyTimeoutMs ?? 10 * 60_000;
    const started = clock.now();
    for (;;) {
      this.throwIfCancelled(name, role);
      const d = await this.read(name, role);
      const p = progressOf(d);
      if (isRolledOut(p)) return;
      const progressing = d.status?.conditions?.find((c) => c.type === 'Progressing');
      if (p.generationCurrent && progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded') {
        throw new CanaryError(
          'unexpected',
          `the ${role} Deployment ${namespace}/${name} failed to roll out: ${progressing.reason}${progressing.message ? `: ${progressing.message}` : ''} (${describeProgress(p)})`,
        );
      }
      const elapsed = clock.now() - started;
      if (elapsed >= timeoutMs) {
        throw new CanaryError(
          'unexpected',
          `the ${role} Deployment ${namespace}/${name} is not ready: ${describeProgress(p)} after ${formatDuration(Math.round(elapsed / 1000) * 1000)}`,
        );
      }
      await clock.sleep(Math.min(pollMs, Math.max(1, timeoutMs - elapsed)), this.opts.signal);
    }
  }

  /** A lost lease aborts with its own CanaryError, which says more than "cancelled": keep it. */
  private throwIfCancelled(name: string, role: 'stable' | 'canary'): void {
    const signal = this.opts.signal;
    if (!signal?.aborted) return;
    if (signal.reason instanceof CanaryError) throw signal.reason;
    throw new CanaryError('unexpected', `the wait for the ${role} Deployment ${this.opts.namespace}/${name} to become ready was cancelled; it keeps rolling out on its own`);
  }

  async stableImage(): Promise<string | null> {
    return this.container(await this.read(this.opts.names.stableDeployment, 'stable')).image;
  }

  async startCanary(image: string): Promise<void> {
    const { names, namespace } = this.opts;
    const canary = await this.read(names.canaryDeployment, 'canary');
    const container = this.container(canary);
    let replicas = names.canaryReplicas;
    if (replicas === undefined) replicas = (await this.read(names.stableDeployment, 'stable')).spec?.replicas ?? 1;
    // One strategic merge patch: the container is matched by name, so sidecars are left alone.
    await this.patch(
      names.canaryDeployment,
      { spec: { replicas, template: { spec: { containers: [{ name: container.name, image }] } } } },
      PatchStrategy.StrategicMergePatch,
      `setting Deployment ${namespace}/${names.canaryDeployment} to image ${image} with ${replicas} replicas`,
    );
    await this.waitRolledOut(names.canaryDeployment, 'canary');
  }

  async promoteStable(image: string, guard: StableWriteGuard = {}): Promise<void> {
    const { names, namespace } = this.opts;
    const ref = `Deployment ${namespace}/${names.stableDeployment}`;
    const read = await this.read(names.stableDeployment, 'stable');
    const container = this.container(read);
    // The fence is checked after the read: a stop that lands after it writes stable (its mark),
    // so the resourceVersion this write carries no longer matches, and the write loses.
    if (guard.fence) await guard.fence();
    if (container.image !== image || guard.mark !== undefined) {
      const body = {
        metadata: {
          ...(guard.fence && { resourceVersion: read.metadata?.resourceVersion }),
          ...(guard.mark !== undefined && { annotations: { [STABLE_RESTORE_ANNOTATION]: guard.mark } }),
        },
        ...(container.image !== image && { spec: { template: { spec: { containers: [{ name: container.name, image }] } } } }),
      };
      try {
        await this.patch(names.stableDeployment, body, PatchStrategy.StrategicMergePatch, `setting ${ref} to image ${image}`);
      } catch (err) {
        if (!(guard.fence && (isConflict(err) || (err instanceof Error && statusCode(err.cause) === 409)))) throw err;
        throw new StopRequestedError(ref, `the write setting it to ${image} lost: ${ref} was written by someone else (a stop) after this rollout read it, so it was not applied`);
      }
    }
    await this.waitRolledOut(names.stableDeployment, 'stable');
  }

  /** Says what it found: a stop must not claim to have scaled what does not exist. */
  async scaleDownCanary(budget?: CallBudget): Promise<ScaleDownResult> {
    const { names, namespace } = this.opts;
    let canary: V1Deployment;
    try {
      canary = await withKubeRetry(
        `reading Deployment ${namespace}/${names.canaryDeployment}`,
        (o) => this.api.readNamespacedDeployment({ name: names.canaryDeployment, namespace }, o),
        this.retryFor(budget),
      );
    } catch (err) {
      // No canary Deployment means no canary pods: the state we want.
      if (isNotFound(err)) return 'not-found';
      throw err;
    }
    if (canary.spec?.replicas === 0) return 'already-zero';
    await this.patch(names.canaryDeployment, { spec: { replicas: 0 } }, PatchStrategy.MergePatch, `scaling Deployment ${namespace}/${names.canaryDeployment} to 0`, budget);
    return 'scaled-to-zero';
  }

  async verifyStable(budget?: CallBudget): Promise<StableStatus> {
    const { names, namespace } = this.opts;
    const d = await this.read(names.stableDeployment, 'stable', budget);
    const p = progressOf(d);
    const ref = `Deployment ${namespace}/${names.stableDeployment}`;
    if (p.want < 1) return { available: false, message: `${ref} is scaled to 0 replicas` };
    const available = p.generationCurrent && p.available >= p.want;
    return { available, message: `${ref}: ${describeProgress(p)}` };
  }
}
