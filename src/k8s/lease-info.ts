// Who holds a target's Lease, as anyone may read it (`canary status`, a refusal), and the
// errors that name a holder. Holding and renewing the lease is RolloutLease's (lease.ts).

import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import type { Clock } from '../rollout/ports.js';
import { isNotFound, withKubeRetry } from './api-errors.js';
import { serverOf } from './connection.js';
import type { RetryPolicy } from '../retry.js';

export function leaseName(target: string): string {
  return `${target}-canary`;
}

/**
 * Who holds the lease: unique per process, readable by the person it blocks.
 * "run 4242 attempt 2 on fv-az12 pid 1234 #9f3a1c" in GitHub Actions, "alice@laptop pid 1234 #9f3a1c" elsewhere.
 */
export function leaseHolderIdentity(
  env: NodeJS.ProcessEnv = process.env,
  host: { hostname: string; user?: string; pid: number; random?: string } = { hostname: hostname(), pid: process.pid },
): string {
  const random = host.random ?? randomBytes(3).toString('hex');
  const tail = `pid ${host.pid} #${random}`;
  if (env['GITHUB_RUN_ID']) return `run ${env['GITHUB_RUN_ID']} attempt ${env['GITHUB_RUN_ATTEMPT'] ?? '1'} on ${host.hostname} ${tail}`;
  let user = host.user;
  if (user === undefined) {
    try {
      user = userInfo().username;
    } catch {
      // Containers without a passwd entry have no user name; host, pid and the suffix still identify us.
      user = 'unknown';
    }
  }
  return `${user}@${host.hostname} ${tail}`;
}

export interface LeaseInfo {
  holder: string;
  /** ISO time of the last renewal by the holder's clock, '' when never renewed. */
  renewTime: string;
  /**
   * A hint for `canary status` only: renewTime plus the duration against this machine's clock, so
   * clock skew shifts it. A deploy never decides on it (see RolloutLease.acquire).
   */
  expired: boolean;
}

/** The lease is someone else's now. */
export class LeaseTakenError extends CanaryError {
  constructor(
    message: string,
    readonly holder: string,
  ) {
    super('taken-over', message);
    this.name = 'LeaseTakenError';
  }
}

/** Another identity holds the lease (exit 2): who, and when it last renewed by its own clock. */
export class LeaseHeldError extends CanaryError {
  constructor(
    message: string,
    readonly holder: string,
    readonly renewTime: string,
    readonly durationSeconds: number,
  ) {
    super('invalid-input', message);
    this.name = 'LeaseHeldError';
  }
}

/** MicroTime comes back as a string (client-node does not deserialize it); accept either. */
function timeOf(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

export function infoOf(lease: V1Lease, now: number): LeaseInfo {
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

/** For `canary status`: who holds the lease, with an advisory expiry (see LeaseInfo.expired). */
export async function readLease(kc: KubeConfig, namespace: string, target: string, opts: { clock?: Pick<Clock, 'now'>; retry?: RetryPolicy } = {}): Promise<LeaseInfo | null> {
  const api = kc.makeApiClient(CoordinationV1Api);
  const name = leaseName(target);
  try {
    const lease = await withKubeRetry(`reading Lease ${namespace}/${name}`, (o) => api.readNamespacedLease({ name, namespace }, o), { ...opts.retry, server: serverOf(kc) });
    return infoOf(lease, (opts.clock ?? { now: () => Date.now() }).now());
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}
