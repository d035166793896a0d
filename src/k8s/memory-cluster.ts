import type { RolloutRecord } from '../rollout/record.js';
import {
  StateConflictError,
  StopRequestedError,
  type OwnRouteState,
  type RouteState,
  type ScaleDownResult,
  type StableStatus,
  type TrafficState,
  type StateStore,
  type StoredRecord,
  type TrafficRouter,
  type Workloads,
} from '../rollout/ports.js';
import type { TargetNames } from '../policy/policy.js';
import type { StableWriteGuard } from '../rollout/ports.js';

export type ClusterNote = (message: string) => void;

/**
 * The cluster a dry-run talks to. It writes nothing anywhere, but says which write it would
 * have made, so a dry-run shows exactly what a live rollout would do to the cluster.
 */
export class MemoryCluster implements TrafficRouter, Workloads, StateStore {
  weight: number | null = null;
  canaryImage: string | null = null;
  canaryReplicas = 0;
  stable: string | null;
  /** The stop marker on our canary route: set by stop(), cleared by prepare(). */
  stoppedBy: string | null = null;
  /** Canary routes someone else made that send traffic to the canary (tests set these). */
  foreign: RouteState[] = [];
  /** Header routing on (the smoke phase); removed by stop() and setWeight(0). */
  headerRouted = false;
  private stored: StoredRecord | null = null;
  private revision = 0;
  /** Every write, in order, as a person would describe it; tests assert on it. */
  readonly writes: string[] = [];

  constructor(
    private readonly namespace: string,
    private readonly names: TargetNames,
    stableImage: string | null,
    private readonly note: ClusterNote = () => undefined,
  ) {
    this.stable = stableImage;
  }

  private write(message: string): void {
    this.writes.push(message);
    this.note(`dry-run: would ${message}`);
  }

  async prepare(): Promise<void> {
    this.write(
      `create Ingress ${this.namespace}/${this.names.canaryIngress} (copy of ${this.names.stableIngress}'s rules pointing at Service ${this.names.canaryService}, canary: "true", canary-weight: "0")`,
    );
    this.weight = 0;
    this.stoppedBy = null;
  }

  async setWeight(weight: number): Promise<void> {
    if (this.stoppedBy !== null) throw new StopRequestedError(`${this.namespace}/${this.names.canaryIngress}`, this.stoppedBy);
    this.write(`patch Ingress ${this.namespace}/${this.names.canaryIngress} canary-weight "${this.weight ?? 0}" → "${weight}"`);
    this.weight = weight;
    if (weight === 0) this.headerRouted = false;
  }

  async routeByHeader(): Promise<void> {
    if (this.stoppedBy !== null) throw new StopRequestedError(`${this.namespace}/${this.names.canaryIngress}`, this.stoppedBy);
    const h = this.names.headerRouting;
    this.write(`patch Ingress ${this.namespace}/${this.names.canaryIngress} canary-by-header "${h?.header ?? ''}" at canary-weight "${this.weight ?? 0}"`);
    this.headerRouted = true;
  }

  async getWeight(): Promise<number | null> {
    return this.weight;
  }

  async stop(marker: string): Promise<OwnRouteState[]> {
    const before = (await this.inspect()).ours;
    if (this.weight === null) return before;
    this.stoppedBy ??= marker;
    if (this.headerRouted) this.write(`patch Ingress ${this.namespace}/${this.names.canaryIngress} remove canary-by-header`);
    this.headerRouted = false;
    if (this.weight === 0) return before;
    this.write(`patch Ingress ${this.namespace}/${this.names.canaryIngress} canary-weight "${this.weight}" → "0"`);
    this.weight = 0;
    return before;
  }

  async inspect(): Promise<TrafficState> {
    const overrides = this.headerRouted ? ['nginx.ingress.kubernetes.io/canary-by-header'] : [];
    const ours = this.weight === null ? [] : [{ name: this.names.canaryIngress, weight: this.weight, overrides, stoppedBy: this.stoppedBy, rolloutId: null }];
    return { ours, foreign: this.foreign.map((r) => ({ ...r })) };
  }

  async stableImage(): Promise<string | null> {
    return this.stable;
  }

  async startCanary(image: string): Promise<void> {
    const replicas = this.names.canaryReplicas ?? 1;
    this.write(`set Deployment ${this.namespace}/${this.names.canaryDeployment} image to ${image}, scale to ${replicas}, and wait until ready`);
    this.canaryImage = image;
    this.canaryReplicas = replicas;
  }

  async promoteStable(image: string, guard?: StableWriteGuard): Promise<void> {
    if (guard?.fence) await guard.fence();
    this.write(`set Deployment ${this.namespace}/${this.names.stableDeployment} image to ${image} and wait until fully available`);
    this.stable = image;
  }

  async scaleDownCanary(): Promise<ScaleDownResult> {
    if (this.canaryReplicas === 0) return 'already-zero';
    this.write(`scale Deployment ${this.namespace}/${this.names.canaryDeployment} to 0`);
    this.canaryReplicas = 0;
    return 'scaled-to-zero';
  }

  async verifyStable(): Promise<StableStatus> {
    return { available: true, message: `Deployment ${this.names.stableDeployment} assumed available (dry-run)` };
  }

  async load(): Promise<StoredRecord | null> {
    return this.stored && { record: structuredClone(this.stored.record), version: this.stored.version };
  }

  async save(record: RolloutRecord, expectedVersion: string | null): Promise<string> {
    if ((this.stored?.version ?? null) !== expectedVersion) throw new StateConflictError(await this.load());
    this.revision += 1;
    this.stored = { record: structuredClone(record), version: String(this.revision) };
    return this.stored.version;
  }
}
