// One deploy at a time, judged like client-go's leader election: the Lease is taken, refused while
// held, taken over only after this process saw it unchanged for a whole lease duration (never by
// comparing another host's renewTime with our clock), renewed within a deadline shorter than the
// lease, and a takeover names the new holder.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { connect } from '../../src/k8s/connection.js';
import { leaseHolderIdentity, LeaseTakenError, readLease, RolloutLease, type LeaseClock } from '../../src/k8s/lease.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/server.js';
import { waitFor } from '../support/wait.js';

let fake: FakeKube;

/**
 * Virtual time: a sleep moves both clocks at once (after a real turn of the event loop, so a
 * renewal loop never spins hot). `onSleep` lets a test act "while" the code under test waits.
 */
class TestClock implements LeaseClock {
  wall = Date.parse('2025-01-01T12:00:00.000Z');
  mono = 1_000_000;
  onSleep: ((ms: number) => void) | undefined;
  now(): number {
    return this.wall;
  }
  monotonic(): number {
    return this.mono;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (signal?.aborted) return;
    this.wall += ms;
    this.mono += ms;
    this.onSleep?.(ms);
  }
}

let clock: TestClock;

beforeEach(async () => {
  fake = await startFakeKube({ namespaces: ['default', 'shop'] });
  clock = new TestClock();
});
afterEach(async () => {
  await fake.stop();
});

function lease(holder: string, extra: Partial<ConstructorParameters<typeof RolloutLease>[0]> = {}): RolloutLease {
  const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
  return new RolloutLease({ kc, namespace: 'shop', target: 'checkout', holder, durationSeconds: 60, clock, retry: { sleep: async () => undefined }, ...extra });
}

type LeaseSpec = { holderIdentity?: string; renewTime?: string; leaseTransitions?: number; leaseDurationSeconds?: number };
const spec = () => fake.get('Lease', 'shop', 'checkout-canary')?.['spec'] as LeaseSpec;

/** Another process's write to the Lease, as the API server would store it. */
function writeLease(holder: string, renewTime: string): void {
  fake.put({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'checkout-canary', namespace: 'shop' },
    spec: { holderIdentity: holder, leaseDurationSeconds: 60, acquireTime: renewTime, renewTime },
  });
}

const leasePuts = () => fake.requests.filter((r) => r.method === 'PUT' && r.path.includes('/leases/'));

describe('RolloutLease', () => {
  it('acquires a new lease with MicroTime timestamps the API server accepts', async () => {
    await lease('ci-run-1').acquire();
    expect(spec().holderIdentity).toBe('ci-run-1');
    expect(spec().renewTime).toBe('2025-01-01T12:00:00.000000Z');
    const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
    expect(await readLease(kc, 'shop', 'checkout', { clock })).toEqual({ holder: 'ci-run-1', renewTime: '2025-01-01T12:00:00.000Z', expired: false });
  });

  // Issue 16 item 7: the create landed but its answer was lost; the retry gets 409 naming us.
  it("a create whose answer was lost (the retry's 409 names this process) is ours, not a refusal of our own rollout", async () => {
    // Just before our create is served, "our earlier create" lands: the create itself then answers 409.
    fake.injectFault({ kind: 'before', method: 'POST', pathPattern: '/leases', run: () => writeLease('ci-run-1', '2025-01-01T12:00:00.000000Z') });
    const mine = lease('ci-run-1');
    await mine.acquire();
    expect(spec().holderIdentity).toBe('ci-run-1');
    // And it is renewed as ours.
    clock.wall += 10_000;
    clock.mono += 10_000;
    await mine.renew();
    expect(spec().renewTime).toBe('2025-01-01T12:00:10.000000Z');
    // Someone else's lease is still refused.
    fake.injectFault({ kind: 'before', method: 'POST', pathPattern: '/leases', run: () => writeLease('ci-run-2', '2025-01-01T12:00:00.000000Z') });
    fake.remove('Lease', 'shop', 'checkout-canary');
    const err = await lease('ci-run-3').acquire().catch((e: unknown) => e);
    expect((err as CanaryError).message).toContain('the lease is held by ci-run-2');
  });

  it('refuses a second deploy while the lease is held, naming the holder and the command that stops it', async () => {
    await lease('ci-run-1').acquire();
    clock.wall += 20_000;
    const err = await lease('alice@laptop').acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(2);
    expect((err as CanaryError).message).toBe(
      'a rollout of checkout is already running: the lease is held by ci-run-1 (last renewed at 2025-01-01T12:00:00.000Z by its own clock); wait for it to finish, or stop it with canary rollback checkout -n shop',
    );
    expect(spec().holderIdentity).toBe('ci-run-1');
  });

  it('never judges expiry by the holder\'s renewTime against our clock: a holder 5 minutes behind is still refused', async () => {
    // The holder's clock is 5 minutes behind ours: its renewTime looks 5 minutes old here.
    writeLease('ci-run-1', '2025-01-01T11:55:00.000000Z');
    const err = await lease('ci-run-2').acquire().catch((e: unknown) => e);
    expect((err as CanaryError).message).toContain('the lease is held by ci-run-1');
    expect(spec().holderIdentity).toBe('ci-run-1');
  });

  it('--resume waits, and a holder that renews while it waits keeps the lease (its clock 5 minutes behind does not matter)', async () => {
    writeLease('ci-run-1', '2025-01-01T11:55:00.000000Z');
    let renewals = 0;
    clock.onSleep = () => {
      renewals += 1;
      writeLease('ci-run-1', `2025-01-01T11:55:${String(renewals * 10).padStart(2, '0')}.000000Z`);
    };
    const err = await lease('ci-run-2').acquire({ waitForExpiry: true }).catch((e: unknown) => e);
    expect((err as CanaryError).message).toMatch(/held by ci-run-1 .*renewed while this deploy waited 1m for it to expire: its deploy is alive/);
    expect(spec().holderIdentity).toBe('ci-run-1');
    expect(leasePuts()).toEqual([]);
  });

  it('--resume takes a lease over only once it has seen it unchanged for a whole lease duration', async () => {
    // Its renewTime even reads as "in the future" here: the holder's clock does not matter.
    writeLease('ci-run-1', '2025-01-01T12:30:00.000000Z');
    const start = clock.mono;
    let takenAt: number | undefined;
    fake.injectFault({ kind: 'before', method: 'PUT', pathPattern: '/leases/checkout-canary', run: () => (takenAt = clock.mono) });
    const said: string[] = [];
    await lease('ci-run-2').acquire({ waitForExpiry: true, onWait: (m) => said.push(m) });
    expect(said).toEqual(['the Lease shop/checkout-canary is held by ci-run-1: waiting up to 1m to see whether it is still renewed before taking it over']);
    expect(spec().holderIdentity).toBe('ci-run-2');
    expect(spec().leaseTransitions).toBe(1);
    expect(takenAt! - start).toBeGreaterThanOrEqual(60_000);
  });

  it('--resume creates the lease afresh when its holder releases it while it waits', async () => {
    writeLease('ci-run-1', '2025-01-01T12:00:00.000000Z');
    clock.onSleep = () => fake.remove('Lease', 'shop', 'checkout-canary');
    await lease('ci-run-2').acquire({ waitForExpiry: true });
    expect(spec().holderIdentity).toBe('ci-run-2');
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/leases')).map((r) => r.status)).toEqual([201]);
  });

  it('of two processes taking over the same dead lease, exactly one wins', async () => {
    writeLease('ci-run-1', '2025-01-01T12:00:00.000000Z');
    const results = await Promise.allSettled([lease('a').acquire({ waitForExpiry: true }), lease('b').acquire({ waitForExpiry: true }), lease('c').acquire({ waitForExpiry: true })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused).toHaveLength(2);
    for (const r of refused) expect(String(r.reason)).toContain(`held by ${spec().holderIdentity}`);
  });

  it('renews, and a lease taken over behind its back is reported lost, naming the new holder', async () => {
    const mine = lease('ci-run-1');
    await mine.acquire();
    clock.wall += 30_000;
    await mine.renew();
    expect(spec().renewTime).toBe('2025-01-01T12:00:30.000000Z');

    writeLease('ci-run-2', '2025-01-01T12:02:00.000000Z');
    const err = await mine.renew().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseTakenError);
    expect((err as LeaseTakenError).holder).toBe('ci-run-2');
    expect((err as LeaseTakenError).exitCode).toBe(4);
  });

  it('a renewal that conflicts because another process took the lease in between names that process, not "unreachable"', async () => {
    const mine = lease('ci-run-1');
    await mine.acquire();
    // Between our read and our write, ci-run-2 takes the lease: our write conflicts.
    fake.injectFault({ kind: 'before', method: 'PUT', pathPattern: '/leases/checkout-canary', run: () => writeLease('ci-run-2', '2025-01-01T12:00:10.000000Z') });
    const err = await mine.renew().catch((e: unknown) => e);
    expect(leasePuts().at(-1)?.status).toBe(409);
    expect(err).toBeInstanceOf(LeaseTakenError);
    expect((err as LeaseTakenError).message).toBe('the Lease shop/checkout-canary was taken over by ci-run-2 while this deploy held it');
    expect((err as LeaseTakenError).holder).toBe('ci-run-2');
    expect(mine.held).toBe(false);
    expect(spec().holderIdentity).toBe('ci-run-2');
  });

  it('the renewal loop reports a conflicting takeover with the new holder, so the deploy leaves traffic alone', async () => {
    const lost: { why: string; holder: string | undefined }[] = [];
    const mine = lease('ci-run-1', { onLost: (why, holder) => lost.push({ why, holder }) });
    await mine.acquire();
    fake.injectFault({ kind: 'before', method: 'PUT', pathPattern: '/leases/checkout-canary', run: () => writeLease('ci-run-2', '2025-01-01T12:00:10.000000Z') });
    mine.startRenewing();
    await waitFor('the lease to be reported lost', () => lost.length > 0);
    expect(lost).toEqual([{ why: 'the Lease shop/checkout-canary was taken over by ci-run-2 while this deploy held it', holder: 'ci-run-2' }]);
    await mine.release();
    expect(spec().holderIdentity).toBe('ci-run-2');
  });

  it('gives up renewing at the renew deadline (2/3 of the lease), before the lease could expire, and nobody is named', async () => {
    const lost: { why: string; holder: string | undefined; at: number; puts: number }[] = [];
    const mine = lease('ci-run-1', {
      retry: { sleep: async () => undefined, attempts: 5 },
      onLost: (why, holder) => lost.push({ why, holder, at: clock.mono, puts: leasePuts().filter((r) => r.status === 503).length }),
    });
    await mine.acquire();
    const acquiredAt = clock.mono;
    fake.injectFault({ kind: 'status', code: 503, method: 'PUT', pathPattern: '/leases/', times: Infinity });
    mine.startRenewing();
    await waitFor('the lease to be reported lost', () => lost.length > 0);
    await mine.release();
    expect(lost[0]?.holder).toBeUndefined();
    expect(lost[0]?.why).toMatch(/^could not renew the Lease shop\/checkout-canary within its renew deadline of 40s \(\d+ tries; last: .*503.*\), before its 1m lease could expire$/);
    expect(lost[0]!.at - acquiredAt).toBeLessThanOrEqual(40_000);
    // Each try is one request: the API client's own retries must not stretch a try past the deadline.
    const failedPuts = lost[0]!.puts;
    expect(failedPuts).toBeGreaterThanOrEqual(2);
    expect(failedPuts).toBeLessThanOrEqual(7);
  });

  it('past its renew deadline the holder may not act, keeps renewing, and may act again once a renewal lands (nobody took it)', async () => {
    const lost: string[] = [];
    const mine = lease('ci-run-1', { onLost: (why) => lost.push(why) });
    await mine.acquire();
    expect(mine.actingRefusal()).toBeNull();
    fake.injectFault({ kind: 'status', code: 503, method: 'PUT', pathPattern: '/leases/', times: Infinity });
    mine.startRenewing();
    await waitFor('the lease reported lost', () => lost.length > 0);
    expect(mine.actingRefusal()).toMatch(/^the Lease shop\/checkout-canary could not be renewed for (?:\d+m ?)?(?:\d+s)?, past its renew deadline of 40s: another deploy may take the rollout over, so this deploy writes nothing more until it renews the Lease$/);
    // Still trying while the deploy's stop may be under way.
    const failedAtLoss = leasePuts().filter((r) => r.status === 503).length;
    await waitFor('more failed renewals after the loss', () => leasePuts().filter((r) => r.status === 503).length > failedAtLoss + 2);
    expect(mine.actingRefusal()).not.toBeNull();
    fake.clearFaults();
    await waitFor('a renewal landed', () => mine.actingRefusal() === null);
    expect(spec().holderIdentity).toBe('ci-run-1');
    expect(lost).toHaveLength(1);
    await mine.release();
  });

  it('past its renew deadline, a lease another process took stays refused', async () => {
    const lost: string[] = [];
    const mine = lease('ci-run-1', { onLost: (why) => lost.push(why) });
    await mine.acquire();
    fake.injectFault({ kind: 'status', code: 503, method: 'PUT', pathPattern: '/leases/', times: Infinity });
    mine.startRenewing();
    await waitFor('the lease reported lost', () => lost.length > 0);
    fake.clearFaults();
    writeLease('ci-run-2', '2025-01-01T12:02:00.000000Z');
    await waitFor('the lease taken by ci-run-2 refused', () => mine.actingRefusal() === 'this deploy no longer holds the Lease shop/checkout-canary');
    expect(mine.held).toBe(false);
    expect(spec().holderIdentity).toBe('ci-run-2');
    await mine.release();
  });

  it('renews on a timer and calls onLost (naming nobody) when the lease is deleted', async () => {
    const lost: { why: string; holder: string | undefined }[] = [];
    const mine = lease('ci-run-1', { onLost: (why, holder) => lost.push({ why, holder }) });
    await mine.acquire();
    mine.startRenewing();
    await waitFor('two renewals to land', () => leasePuts().filter((r) => r.status === 200).length >= 2);
    fake.remove('Lease', 'shop', 'checkout-canary');
    await waitFor('the lease to be reported lost', () => lost.length > 0);
    expect(lost[0]).toEqual({ why: 'the Lease shop/checkout-canary was deleted while this deploy held it', holder: undefined });
    await mine.release();
  });

  it('release gives the lease up so the next deploy can start at once', async () => {
    const mine = lease('ci-run-1');
    await mine.acquire();
    await mine.release();
    expect(fake.get('Lease', 'shop', 'checkout-canary')).toBeUndefined();
    await lease('ci-run-2').acquire();
    expect(spec().holderIdentity).toBe('ci-run-2');
  });
});

describe('leaseHolderIdentity', () => {
  const env = { GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/shop', GITHUB_RUN_ID: '4242', GITHUB_RUN_ATTEMPT: '2' };

  it('names the run, its attempt, the host and the process', () => {
    expect(leaseHolderIdentity(env, { hostname: 'fv-az12', pid: 77, random: '9f3a1c' })).toBe('run 4242 attempt 2 on fv-az12 pid 77 #9f3a1c');
    expect(leaseHolderIdentity({}, { hostname: 'vm', user: 'root', pid: 77, random: '9f3a1c' })).toBe('root@vm pid 77 #9f3a1c');
  });

  it('a re-run attempt, and two deploys from one machine, are different holders', () => {
    const host = { hostname: 'vm', user: 'root', pid: 77 };
    expect(leaseHolderIdentity({ ...env, GITHUB_RUN_ATTEMPT: '1' }, { ...host, random: 'aaaaaa' })).not.toBe(leaseHolderIdentity(env, { ...host, random: 'aaaaaa' }));
    expect(leaseHolderIdentity({}, host)).not.toBe(leaseHolderIdentity({}, host));
    expect(leaseHolderIdentity({}, host)).not.toBe(leaseHolderIdentity({}, { ...host, pid: 78 }));
  });
});

