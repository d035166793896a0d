import { settledStatus } from '../fake-kube/deployment-controller.js';
import type { KubeObject as FakeObject } from '../fake-kube/types.js';
import type { KubeApi, KubeObject } from './api.js';

// A bare kube-apiserver has no controller-manager: nothing ever writes a Deployment's status. This
// loop plays the Deployment controller for one namespace, in the test process: it reads the
// Deployments and PATCHes /status to what the real controller converges to (the same status the
// fake API server writes, see fake-kube/deployment-controller.ts). A test decides, per Deployment,
// whether its pods become ready, so it can hold a canary unready or hold stable's rollout.

/**
 * ready: every replica of the current template becomes available.
 * unready: the pods are updated but never ready.
 * frozen: the controller never observes the new generation (a rollout that does not progress).
 */
export type Behavior = 'ready' | 'unready' | 'frozen';

export type BehaviorRule = (deployment: KubeObject) => Behavior;

const COUNTS = ['replicas', 'updatedReplicas', 'readyReplicas', 'availableReplicas', 'unavailableReplicas'] as const;

interface DeploymentStatus {
  observedGeneration?: number;
  conditions?: { type?: string; status?: string; reason?: string }[];
  [key: string]: unknown;
}

function comparable(status: DeploymentStatus | undefined): string {
  const s = status ?? {};
  return JSON.stringify({
    observedGeneration: s.observedGeneration ?? null,
    counts: COUNTS.map((k) => s[k] ?? 0),
    conditions: (s.conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}`),
  });
}

export function imageOf(deployment: KubeObject | undefined): string | undefined {
  const spec = deployment?.['spec'] as { template?: { spec?: { containers?: { image?: string }[] } } } | undefined;
  return spec?.template?.spec?.containers?.[0]?.image;
}

export class DeploymentController {
  private readonly rules = new Map<string, BehaviorRule>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Status writes made, for tests that want to know the controller acted. */
  writes = 0;

  constructor(
    private readonly api: KubeApi,
    private readonly namespace: string,
    private readonly pollMs = 100,
  ) {}

  /** Sets how a Deployment behaves from now on (default: ready). */
  set(name: string, behavior: Behavior | BehaviorRule): void {
    this.rules.set(name, typeof behavior === 'function' ? behavior : () => behavior);
    this.wake?.();
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // The API server may be down on purpose (an outage test): the controller just tries again.
      await this.reconcileAll().catch(() => undefined);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async reconcileAll(): Promise<void> {
    const { items } = await this.api.list(`/apis/apps/v1/namespaces/${this.namespace}/deployments`);
    for (const deployment of items) {
      const name = deployment.metadata?.name ?? '';
      const behavior = (this.rules.get(name) ?? (() => 'ready'))(deployment);
      if (behavior === 'frozen') continue;
      const desired = settledStatus(deployment as FakeObject, behavior) as DeploymentStatus;
      const current = deployment['status'] as DeploymentStatus | undefined;
      if (comparable(current) === comparable(desired)) continue;
      // A merge patch keeps keys it does not name: counts that dropped to zero are removed with null.
      const patch: Record<string, unknown> = { ...desired };
      for (const key of COUNTS) if (!(key in desired)) patch[key] = null;
      await this.api
        .mergePatch(`/apis/apps/v1/namespaces/${this.namespace}/deployments/${name}/status`, { status: patch })
        .then(() => (this.writes += 1))
        .catch(() => undefined);
    }
  }
}
