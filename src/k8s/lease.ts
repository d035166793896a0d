// One deploy per target at a time: a coordination.k8s.io/v1 Lease held and renewed by the
// running deploy. Taking an expired lease is a write conditional on the resourceVersion we
// read, so of two processes racing for it exactly one wins.

import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import type { Clock } from '../rollout/ports.js';
import { formatDuration } from '../policy/units.js';
import { describeKubeError, isConflict, isNotFound, withKubeRetry, type RetryOptions } from './api-errors.js';
import { serverOf } from './connection.js';
import { ownershipLabels } from './labels.js';

export function leaseName(target: string): string {
  return `${target}-canary`;
}

export interface LeaseInfo {
  holder: string;
  /** ISO time of the last renewal, '' when never renewed. */
  renewTime: string;
  expired: boolean;
}

export interface RolloutLeaseOptions {
  kc: KubeConfig;
  namespace: string;
  target: string;
  holder: string;
  durationSeconds?: number;
  clock?: Pick<Clock, 'now'>;
  /** Called once when a renewal fails: another process may take over, so the deploy must stop. */
  /** `holder` is set when another process holds the lease now: the rollout is theirs. */
  onLost?: (why: string, holder?: string) => void;
  retry?: RetryOptions;
}

const systemNow = { now: () => Date.now() };

/** MicroTime comes back as a string (client-node does not deserialize it); accept either. */
function timeOf(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function infoOf(lease: V1Lease, now: number): LeaseInfo {
  const spec = lease.spec ?? {};
  const renewed = timeOf(spec.renewTime) ?? timeOf(spec.acquireTime);
  const duration = spec.leaseDurationSeconds ?? 0;
  const holder = spec.holderIdentity ?? '';
  return {
    holder,
    renewTime: renewed === undefined ? '' : new Date(renewed).toISOString(),
    expired: holder === '' || renewed === undefined || renewed + duration * 1000 <= now,
  };
}

export async function readLease(kc: KubeConfig, namespace: string, target: string, opts: { clock?: Pick<Clock, 'now'>; retry?: RetryOptions } = {}): Promise<LeaseInfo | null> {
  const api = kc.makeApiClient(CoordinationV1Api);
  const name = leaseName(target);
  try {
    const lease = await withKubeRetry(`reading Lease ${namespace}/${name}`, (o) => api.readNamespacedLease({ name, namespace }, o), { ...opts.retry, server: serverOf(kc) });
    return infoOf(lease, (opts.clock ?? systemNow).now());
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

export class RolloutLease {
  private readonly api: CoordinationV1Api;
  private readonly name: string;
  private readonly duration: number;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly retry: RetryOptions & { server: string };
  /** resourceVersion of our last write; null while we do not hold the lease. */
  private version: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;

  constructor(private readonly opts: RolloutLeaseOptions) {
    this.api = opts.kc.makeApiClient(CoordinationV1Api);
    this.name = leaseName(opts.target);
    this.duration = opts.durationSeconds ?? 60;
    this.clock = opts.clock ?? systemNow;
    this.retry = { ...opts.retry, server: serverOf(opts.kc) };
  }

  private get ref(): string {
    return `${this.opts.namespace}/${this.name}`;
  }

  private body(previous: V1Lease | undefined): V1Lease {
    const now = new V1MicroTime(this.clock.now());
    const taking = this.version === null;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.name,
        namespace: this.opts.namespace,
        labels: { ...previous?.metadata?.labels, ...ownershipLabels(this.opts.target) },
        ...(previous?.metadata?.resourceVersion ? { resourceVersion: previous.metadata.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: this.opts.holder,
        leaseDurationSeconds: this.duration,
        acquireTime: taking ? now : (previous?.spec?.acquireTime ?? now),
        renewTime: now,
        leaseTransitions: (previous?.spec?.leaseTransitions ?? 0) + (taking && previous ? 1 : 0),
      },
    };
  }

  private async read(): Promise<V1Lease | undefined> {
    const { namespace } = this.opts;
    try {
      return await withKubeRetry(`reading Lease ${this.ref}`, (o) => this.api.readNamespacedLease({ name: this.name, namespace }, o), this.retry);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Takes the lease, or refuses naming whoever holds it. */
  async acquire(): Promise<void> {
    const { namespace, target } = this.opts;
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      const current = await this.read();
      if (current) {
        const info = infoOf(current, this.clock.now());
        if (!info.expired) {
          const ago = info.renewTime ? formatDuration(Math.round(Math.max(0, this.clock.now() - Date.parse(info.renewTime)) / 1000) * 1000) : 'never';
          throw new CanaryError(
            'invalid-input',
            `a rollout of ${target} is already running: the lease is held by ${info.holder} (renewed ${ago} ago); wait for it to finish, or stop it with canary rollback ${target}`,
          );
        }
      }
      this.version = null;
      const body = this.body(current);
      try {
        const written = current
          ? await withKubeRetry(`taking over the expired Lease ${this.ref}`, (o) => this.api.replaceNamespacedLease({ name: this.name, namespace, body }, o), this.retry)
          : await withKubeRetry(`creating Lease ${this.ref}`, (o) => this.api.createNamespacedLease({ namespace, body }, o), this.retry);
        this.version = written.metadata?.resourceVersion ?? null;
        return;
      } catch (err) {
        // Another process got there first (AlreadyExists is a 409 too); the next read says who.
        if (!isConflict(err)) throw err;
      }
    }
    throw new CanaryError('unexpected', `the Lease ${this.ref} kept changing while this deploy tried to take it`);
  }

  /** Renews once; conditional on our last write, so a lease someone else took is never overwritten. */
  async renew(): Promise<void> {
    if (this.version === null) throw new CanaryError('unexpected', `the Lease ${this.ref} is not held by this process`);
    const { namespace } = this.opts;
    const current = await this.read();
    if (!current || current.metadata?.resourceVersion !== this.version) {
      this.version = null;
      const by = current?.spec?.holderIdentity;
      if (current && by && by !== this.opts.holder) this.takenOverBy = by;
      throw new CanaryError('unexpected', `the Lease ${this.ref} was ${current ? `taken over${by ? ` by ${by}` : ''}` : 'deleted'} while this deploy held it`);
    }
    const body = this.body(current);
    try {
      const written = await withKubeRetry(`renewing Lease ${this.ref}`, (o) => this.api.replaceNamespacedLease({ name: this.name, namespace, body }, o), this.retry);
      this.version = written.metadata?.resourceVersion ?? null;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) {
        this.version = null;
        throw new CanaryError('unexpected', `the Lease ${this.ref} was changed by another process while this deploy held it`);
      }
      throw err;
    }
  }

  /** Renews every third of the lease duration until release(); the first failure calls onLost and stops. */
  startRenewing(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.renewing) return;
      this.renewing = this.renew()
        .catch((err: unknown) => {
          this.stopRenewing();
          this.opts.onLost?.(err instanceof CanaryError ? err.message : `lost the rollout lease ${this.ref}: ${describeKubeError(err)}`, this.takenOverBy);
        })
        .finally(() => {
          this.renewing = undefined;
        });
    }, (this.duration * 1000) / 3);
    this.timer.unref();
  }

  private stopRenewing(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Who holds the lease after we lost it to them, if anyone did. */
  private takenOverBy: string | undefined;

  get held(): boolean {
    return this.version !== null;
  }

  /** Gives the lease up (best effort: if this fails, it simply expires). */
  async release(): Promise<void> {
    this.stopRenewing();
    await this.renewing?.catch(() => undefined);
    const version = this.version;
    if (version === null) return;
    this.version = null;
    const { namespace } = this.opts;
    try {
      await withKubeRetry(
        `releasing Lease ${this.ref}`,
        (o) => this.api.deleteNamespacedLease({ name: this.name, namespace, body: { preconditions: { resourceVersion: version } } }, o),
        { ...this.retry, attempts: 2 },
      );
    } catch {
      // Expiry releases it anyway.
    }
  }
}
