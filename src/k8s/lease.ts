// One deploy per target at a time: a coordination.k8s.io/v1 Lease held and renewed by the
// running deploy, judged the way client-go's leader election judges it:
// - expiry is decided on time *this process* observed: a lease is expired only once its
//   resourceVersion has been seen unchanged for a whole lease duration on our monotonic clock.
//   Another host's renewTime is never compared with our clock (their clock may be minutes off);
// - renewal has a deadline shorter than the lease (2/3 of it): a deploy that cannot renew by then
//   stops while the lease is still ours, before anyone else could take it;
// - the holder identity is unique per process (run, attempt, host, pid, random), so a re-run
//   attempt or a second deploy from the same machine is never mistaken for the holder;
// - a write that conflicts is re-read, and the new holder is named.
// Taking a lease is a write conditional on the resourceVersion we read, so of two processes
// racing for it exactly one wins.

import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import { systemClock } from '../rollout/clock.js';
import { formatDuration } from '../policy/units.js';
import { describeKubeError, isConflict, isNotFound, withKubeRetry } from './api-errors.js';
import { serverOf } from './connection.js';
import { ownershipLabels } from './labels.js';
import { infoOf, LeaseHeldError, LeaseTakenError, leaseName } from './lease-info.js';
import type { RetryPolicy } from '../retry.js';

export { leaseHolderIdentity, LeaseHeldError, leaseName, LeaseTakenError, readLease, type LeaseInfo } from './lease-info.js';




/** Time as the lease sees it. */
export interface LeaseClock {
  /** Wall clock: written into renewTime/acquireTime for people to read, never compared with another host's. */
  now(): number;
  /** Monotonic milliseconds: expiry and the renew deadline are judged on this. */
  monotonic(): number;
  /** Resolves after ms, or early when the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

// Not unref'd (systemClock's sleep): a --resume waiting for a dead deploy's lease has nothing else
// keeping the process alive; the renewal loop's sleeps end when release() aborts them.
export const systemLeaseClock: LeaseClock = {
  now: systemClock.now,
  monotonic: () => performance.now(),
  sleep: systemClock.sleep,
};

export interface RolloutLeaseOptions {
  kc: KubeConfig;
  namespace: string;
  target: string;
  /** This process's identity (leaseHolderIdentity()). */
  holder: string;
  durationSeconds?: number;
  clock?: LeaseClock;
  /**
   * Called once when the lease is lost. `holder` is set when another process holds it now: the
   * rollout is theirs and traffic must not be touched. Without it nobody took the lease (yet):
   * the deploy must stop before anyone could.
   */
  onLost?: (why: string, holder?: string) => void;
  retry?: RetryPolicy;
}


/** A version of the lease as this process saw it, and when (monotonic) it first saw that version. */
interface Observation {
  version: string;
  holder: string;
  at: number;
}

export class RolloutLease {
  private readonly api: CoordinationV1Api;
  private readonly name: string;
  private readonly duration: number;
  private readonly clock: LeaseClock;
  private readonly retry: RetryPolicy & { server: string };
  /** resourceVersion of our last write; null while we do not hold the lease. */
  private version: string | null = null;
  /** leaseTransitions of the lease as this process took it: with the holder identity, its fence token. */
  private transitions = 0;
  /** Monotonic time of our last successful write: the renew deadline counts from it. */
  private renewedAt = 0;
  private observed: Observation | undefined;
  private loop: Promise<void> | undefined;
  private stopLoop: AbortController | undefined;

  constructor(private readonly opts: RolloutLeaseOptions) {
    this.api = opts.kc.makeApiClient(CoordinationV1Api);
    this.name = leaseName(opts.target);
    this.duration = opts.durationSeconds ?? 60;
    this.clock = opts.clock ?? systemLeaseClock;
    this.retry = { ...opts.retry, server: serverOf(opts.kc) };
  }

  /** Renewals stop being tried after this long without one, while the lease is still ours (2/3 of it, as client-go's 10 s of 15 s). */
  get renewDeadlineMs(): number {
    return (this.duration * 1000 * 2) / 3;
  }

  /** How often the holder renews, and a waiting process looks again (client-go: 2 s of 15 s). */
  get retryPeriodMs(): number {
    return (this.duration * 1000) / 6;
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

  private async read(retry: RetryPolicy = this.retry): Promise<V1Lease | undefined> {
    const { namespace } = this.opts;
    try {
      return await withKubeRetry(`reading Lease ${this.ref}`, (o) => this.api.readNamespacedLease({ name: this.name, namespace }, o), { ...this.retry, ...retry });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Notes the lease as seen now; returns how long (monotonic ms) this exact version has been seen
   * unchanged. A new version (the holder renewed) starts the count again.
   */
  private observe(lease: V1Lease): number {
    const version = lease.metadata?.resourceVersion ?? '';
    const holder = lease.spec?.holderIdentity ?? '';
    const at = this.clock.monotonic();
    if (!this.observed || this.observed.version !== version || this.observed.holder !== holder) this.observed = { version, holder, at };
    return at - this.observed.at;
  }

  private refusal(lease: V1Lease, why: string): LeaseHeldError {
    const { target, namespace } = this.opts;
    const info = infoOf(lease, this.clock.now());
    const renewed = info.renewTime ? `last renewed at ${info.renewTime} by its own clock` : 'never renewed';
    return new LeaseHeldError(
      `a rollout of ${target} is already running: the lease is held by ${info.holder} (${renewed})${why}; wait for it to finish, or stop it with canary rollback ${target} -n ${namespace}`,
      info.holder,
      renewed,
      lease.spec?.leaseDurationSeconds ?? this.duration,
    );
  }

  /** Holder identity and epoch (the lease's transitions when taken): unique to this holding. */
  get fenceToken(): string {
    return `${this.opts.holder} epoch ${this.transitions}`;
  }

  /**
   * Takes the lease, or refuses naming whoever holds it. A lease held by another identity is
   * refused at once, unless `waitForExpiry` (a `--resume` after a deploy died): then it is watched
   * for up to one of its lease durations, and taken only if nobody renewed it in that time.
   */
  async acquire(opts: { waitForExpiry?: boolean; signal?: AbortSignal; onWait?: (message: string) => void } = {}): Promise<void> {
    const { namespace } = this.opts;
    let wait = opts.waitForExpiry === true;
    /** When our last write was sent: a lease naming us was written no earlier than that. */
    let sentAt: number | null = null;
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      let current = await this.read();
      if (current && sentAt !== null && current.spec?.holderIdentity === this.opts.holder) {
        // Our write landed but its answer was lost (the retry got 409 naming us): it is ours,
        // renewed no later than when we sent it (identities are unique per process).
        this.version = current.metadata?.resourceVersion ?? null;
        this.transitions = current.spec?.leaseTransitions ?? 0;
        this.renewedAt = sentAt;
        return;
      }
      if (current && (current.spec?.holderIdentity ?? '') !== '') {
        if (!wait) throw this.refusal(current, '');
        const seconds = current.spec?.leaseDurationSeconds ?? this.duration;
        opts.onWait?.(
          `the Lease ${this.ref} is held by ${current.spec?.holderIdentity}: waiting up to ${formatDuration(seconds * 1000)} to see whether it is still renewed before taking it over`,
        );
        current = await this.waitUntilExpired(current, opts.signal);
      }
      this.version = null;
      const body = this.body(current);
      sentAt = this.clock.monotonic();
      try {
        const written = current
          ? await withKubeRetry(`taking over the expired Lease ${this.ref}`, (o) => this.api.replaceNamespacedLease({ name: this.name, namespace, body }, o), this.retry)
          : await withKubeRetry(`creating Lease ${this.ref}`, (o) => this.api.createNamespacedLease({ namespace, body }, o), this.retry);
        this.version = written.metadata?.resourceVersion ?? null;
        this.transitions = written.spec?.leaseTransitions ?? 0;
        this.renewedAt = this.clock.monotonic();
        return;
      } catch (err) {
        // Another process got there first (AlreadyExists is a 409 too): it is alive, so the next
        // read refuses naming it rather than waiting it out.
        if (!isConflict(err)) throw err;
        wait = false;
      }
    }
    throw new CanaryError('unexpected', `the Lease ${this.ref} kept changing while this deploy tried to take it`);
  }

  /**
   * Watches a held lease; returns it once seen unchanged for its whole duration (or released, or
   * undefined once deleted: then it is created afresh), and refuses when its holder renews it.
   */
  private async waitUntilExpired(first: V1Lease, signal?: AbortSignal): Promise<V1Lease | undefined> {
    const durationMs = (first.spec?.leaseDurationSeconds ?? this.duration) * 1000;
    let lease = first;
    let unchanged = this.observe(lease);
    while (unchanged < durationMs) {
      await this.clock.sleep(Math.min(this.retryPeriodMs, durationMs - unchanged), signal);
      if (signal?.aborted) throw new CanaryError('invalid-input', `stopped while waiting for the Lease ${this.ref} to expire; nothing was changed`);
      const next = await this.read();
      if (!next || (next.spec?.holderIdentity ?? '') === '') return next;
      const before = this.observed;
      unchanged = this.observe(next);
      if (before && this.observed !== before) {
        throw this.refusal(next, `, and it was renewed while this deploy waited ${formatDuration(Math.round(durationMs / 1000) * 1000)} for it to expire: its deploy is alive`);
      }
      lease = next;
    }
    return lease;
  }

  /**
   * One renewal (a read, then a write conditional on it), each call bounded by `timeoutMs`.
   * A lease that another identity holds now is a LeaseTakenError naming it.
   */
  async renew(timeoutMs?: number): Promise<void> {
    if (this.version === null) throw new CanaryError('unexpected', `the Lease ${this.ref} is not held by this process`);
    const { namespace } = this.opts;
    const once: RetryPolicy = { attempts: 1, ...(timeoutMs !== undefined && { timeoutMs: Math.max(1, Math.round(timeoutMs)) }) };
    const current = await this.read(once);
    if (!current) {
      this.version = null;
      throw new CanaryError('unreachable', `the Lease ${this.ref} was deleted while this deploy held it`);
    }
    this.takenOver(current);
    const body = this.body(current);
    try {
      const written = await withKubeRetry(`renewing Lease ${this.ref}`, (o) => this.api.replaceNamespacedLease({ name: this.name, namespace, body }, o), { ...this.retry, ...once });
      this.version = written.metadata?.resourceVersion ?? null;
      this.renewedAt = this.clock.monotonic();
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) throw err;
      // Changed between our read and our write: whoever changed it is named, not guessed at.
      const now = await this.read(once);
      if (!now) {
        this.version = null;
        throw new CanaryError('unreachable', `the Lease ${this.ref} was deleted while this deploy held it`);
      }
      this.takenOver(now);
      throw new CanaryError('unreachable', `the Lease ${this.ref} changed while this deploy renewed it`, [], { cause: err });
    }
  }

  /** Throws LeaseTakenError when the lease is held by another identity now. */
  private takenOver(current: V1Lease): void {
    const by = current.spec?.holderIdentity ?? '';
    if (by === this.opts.holder) {
      // Our own write whose answer we never got (a timeout) is still ours.
      this.version = current.metadata?.resourceVersion ?? this.version;
      return;
    }
    this.version = null;
    throw new LeaseTakenError(
      by ? `the Lease ${this.ref} was taken over by ${by} while this deploy held it` : `the Lease ${this.ref} was released by another process while this deploy held it`,
      by,
    );
  }

  /**
   * Renews until it works or the renew deadline (counted from the last successful renewal) passes.
   * Another holder ends it at once (LeaseTakenError); the deadline ends it with an 'unreachable'
   * error while the lease is still ours, so the deploy can stop before anyone could take over.
   */
  async renewWithinDeadline(signal?: AbortSignal): Promise<void> {
    const deadline = this.renewedAt + this.renewDeadlineMs;
    let last: unknown;
    let tries = 0;
    for (;;) {
      const left = deadline - this.clock.monotonic();
      if (left <= 0 || signal?.aborted) break;
      tries += 1;
      try {
        await this.renew(left);
        return;
      } catch (err) {
        if (err instanceof LeaseTakenError || this.version === null) throw err;
        last = err;
      }
      const wait = Math.min(this.retryPeriodMs / 2, deadline - this.clock.monotonic());
      if (wait > 0) await this.clock.sleep(wait, signal);
    }
    const why = last instanceof CanaryError ? last.message : last === undefined ? 'no attempt finished' : describeKubeError(last);
    throw new CanaryError(
      'unreachable',
      `could not renew the Lease ${this.ref} within its renew deadline of ${formatDuration(Math.round(this.renewDeadlineMs / 1000) * 1000)} (${tries} tries; last: ${why}), before its ${formatDuration(this.duration * 1000)} lease could expire`,
    );
  }

  /**
   * Renews every retry period until release(). A lost lease calls onLost once; one that is merely
   * past its renew deadline (nobody else seen) is still tried, every half retry period, because
   * the deploy's own stop may still be under way: it may act again only once a renewal lands
   * (`actingRefusal`). A lease another process holds, or one deleted, ends the loop.
   */
  startRenewing(): void {
    if (this.loop) return;
    const stop = new AbortController();
    this.stopLoop = stop;
    this.loop = (async () => {
      let lost = false;
      while (!stop.signal.aborted) {
        await this.clock.sleep(lost ? this.retryPeriodMs / 2 : this.retryPeriodMs, stop.signal);
        if (stop.signal.aborted) return;
        try {
          if (lost) await this.renew(this.retryPeriodMs);
          else await this.renewWithinDeadline(stop.signal);
        } catch (err) {
          if (stop.signal.aborted) return;
          if (!lost) {
            const holder = err instanceof LeaseTakenError && err.holder ? err.holder : undefined;
            this.opts.onLost?.(err instanceof CanaryError ? err.message : `lost the rollout lease ${this.ref}: ${describeKubeError(err)}`, holder);
          }
          lost = true;
          if (err instanceof LeaseTakenError || this.version === null) return;
        }
      }
    })();
  }

  /**
   * Null while this process may still act as the rollout's owner: it holds the lease and renewed
   * it within the renew deadline (or renewed it again since). Otherwise why it may not: past the
   * renew deadline another process may be about to take the lease over, and a write of ours could
   * land on its rollout.
   */
  actingRefusal(): string | null {
    if (this.version === null) return `this deploy no longer holds the Lease ${this.ref}`;
    const since = this.clock.monotonic() - this.renewedAt;
    if (since < this.renewDeadlineMs) return null;
    return `the Lease ${this.ref} could not be renewed for ${formatDuration(Math.round(since / 1000) * 1000)}, past its renew deadline of ${formatDuration(Math.round(this.renewDeadlineMs / 1000) * 1000)}: another deploy may take the rollout over, so this deploy writes nothing more until it renews the Lease`;
  }

  get held(): boolean {
    return this.version !== null;
  }

  /** Gives the lease up (best effort: if this fails, it simply expires). */
  async release(): Promise<void> {
    this.stopLoop?.abort();
    await this.loop?.catch(() => undefined);
    this.loop = undefined;
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
