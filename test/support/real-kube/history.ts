import type { KubeApi, KubeObject } from './api.js';
import { KubeApiError } from './api.js';

// Every change the API server made to the objects a rollout touches in one namespace (Ingresses,
// Deployments, the record ConfigMap, the Lease), in the server's own order. A watch sees each
// write (polling would miss a state that lasted a millisecond), and etcd's revision orders writes
// across kinds, so a test can replay the cluster's history and ask questions such as "was the
// canary ever routed traffic while it had no pods?" or "was the lease released, or a rollback
// recorded, while the canary still had traffic?".

type Kind = 'Ingress' | 'Deployment' | 'ConfigMap' | 'Lease';

export interface Change {
  /** etcd revision of the write (the API calls it opaque; with etcd3 it is one global counter). */
  revision: number;
  kind: Kind;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  name: string;
  object: KubeObject;
}

export interface Snapshot {
  revision: number;
  /** What changed to make this snapshot, e.g. "Lease checkout-canary DELETED". */
  cause: string;
  /** Canary weight annotation of each Ingress carrying one (the canary Ingresses). */
  weights: Map<string, number>;
  /** spec.replicas of each Deployment. */
  replicas: Map<string, number>;
  /** holderIdentity of the rollout Lease; undefined when there is none or it is empty. */
  leaseHolder: string | undefined;
  /** phase of the rollout record. */
  recordPhase: string | undefined;
  /** id of the rollout the record is about, to tell two rollouts' writes apart. */
  recordId: string | undefined;
}

const WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';
const FINAL = ['promoted', 'rolled-back', 'aborted', 'failed'];

export class ClusterHistory {
  readonly changes: Change[] = [];
  private readonly controller = new AbortController();
  private readonly loops: Promise<void>[] = [];
  /** Set when a watch could not resume where it stopped, so history may have a gap. */
  gap = false;

  constructor(
    private readonly api: KubeApi,
    private readonly namespace: string,
    private readonly names: { canaryDeployment: string; record: string; lease: string },
  ) {}

  async start(): Promise<void> {
    const ns = this.namespace;
    const kinds: [Kind, string][] = [
      ['Ingress', `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`],
      ['Deployment', `/apis/apps/v1/namespaces/${ns}/deployments`],
      ['ConfigMap', `/api/v1/namespaces/${ns}/configmaps`],
      ['Lease', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`],
    ];
    for (const [kind, path] of kinds) {
      const { resourceVersion, items } = await this.api.list(path);
      for (const object of items) this.add(kind, 'ADDED', object);
      this.loops.push(this.follow(kind, path, resourceVersion));
    }
  }

  private add(kind: Kind, type: Change['type'], object: KubeObject): void {
    const name = object.metadata?.name ?? '';
    // A DELETED event carries the object's last version; its revision is the deletion's.
    const revision = Number(object.metadata?.resourceVersion ?? 0);
    if (this.changes.some((c) => c.kind === kind && c.name === name && c.revision === revision && c.type === type)) return;
    this.changes.push({ revision, kind, type, name, object });
  }

  private async follow(kind: Kind, path: string, from: string): Promise<void> {
    let version = from;
    const signal = this.controller.signal;
    while (!signal.aborted) {
      try {
        version = await this.api.watchOnce(path, version, (e) => this.add(kind, e.type as Change['type'], e.object), signal);
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof KubeApiError && err.status === 410) {
          this.gap = true;
          const listed = await this.api.list(path).catch(() => undefined);
          if (listed) {
            for (const object of listed.items) this.add(kind, 'MODIFIED', object);
            version = listed.resourceVersion;
          }
        }
        // The API server is down (an outage test): try again shortly.
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await Promise.allSettled(this.loops);
  }

  /** The state after each change, in revision order. */
  snapshots(): Snapshot[] {
    const ordered = [...this.changes].sort((a, b) => a.revision - b.revision);
    const weights = new Map<string, number>();
    const replicas = new Map<string, number>();
    let leaseHolder: string | undefined;
    let recordPhase: string | undefined;
    let recordId: string | undefined;
    const out: Snapshot[] = [];
    for (const c of ordered) {
      const gone = c.type === 'DELETED';
      if (c.kind === 'Ingress') {
        const w = c.object.metadata?.annotations?.[WEIGHT];
        if (gone || w === undefined) weights.delete(c.name);
        else weights.set(c.name, Number(w));
      } else if (c.kind === 'Deployment') {
        if (gone) replicas.delete(c.name);
        else replicas.set(c.name, (c.object['spec'] as { replicas?: number } | undefined)?.replicas ?? 1);
      } else if (c.kind === 'Lease' && c.name === this.names.lease) {
        const holder = (c.object['spec'] as { holderIdentity?: string } | undefined)?.holderIdentity;
        leaseHolder = gone || !holder ? undefined : holder;
      } else if (c.kind === 'ConfigMap' && c.name === this.names.record) {
        const text = (c.object['data'] as Record<string, string> | undefined)?.['record.json'];
        try {
          const record = gone || !text ? undefined : (JSON.parse(text) as { phase?: string; id?: string });
          recordPhase = record?.phase;
          recordId = record?.id;
        } catch {
          recordPhase = 'corrupt';
          recordId = undefined;
        }
      }
      out.push({ revision: c.revision, cause: `${c.kind} ${c.name} ${c.type}`, weights: new Map(weights), replicas: new Map(replicas), leaseHolder, recordPhase, recordId });
    }
    return out;
  }

  /**
   * Moments the cluster was unsafe, as sentences (empty when it never was):
   * - a canary Ingress routed traffic (weight > 0) while the canary Deployment had 0 replicas;
   * - the lease was given up, or the record said the rollout had ended, while a canary Ingress
   *   still routed traffic (a stop that did not first confirm weight 0).
   */
  violations(): string[] {
    const out: string[] = [];
    const { canaryDeployment } = this.names;
    let previous: Snapshot | undefined;
    for (const s of this.snapshots()) {
      const routed = [...s.weights].filter(([, w]) => w > 0);
      const where = `revision ${s.revision} (${s.cause}): weights ${JSON.stringify(routed)}`;
      if (routed.length > 0) {
        if ((s.replicas.get(canaryDeployment) ?? 0) === 0) out.push(`${where} while ${canaryDeployment} had 0 replicas`);
        if (previous?.leaseHolder !== undefined && s.leaseHolder === undefined) out.push(`${where} when the lease was released`);
        if (s.recordPhase && FINAL.includes(s.recordPhase) && s.recordPhase !== previous?.recordPhase) out.push(`${where} when the record said ${s.recordPhase} (rollout ${s.recordId}; the rollout before was ${previous?.recordId})`);
      }
      previous = s;
    }
    return out;
  }

  /** The weights the named canary Ingress held, in order, without repeats. */
  weightsOf(ingress: string): number[] {
    const seen: number[] = [];
    for (const s of this.snapshots()) {
      const w = s.weights.get(ingress);
      if (w !== undefined && seen.at(-1) !== w) seen.push(w);
    }
    return seen;
  }
}
