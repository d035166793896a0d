// One deploy at a time: the Lease is taken, refused while held, taken over once expired.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { connect } from '../../src/k8s/connection.js';
import { readLease, RolloutLease } from '../../src/k8s/lease.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/server.js';

let fake: FakeKube;
let now = Date.parse('2025-01-01T12:00:00.000Z');
const clock = { now: () => now };

beforeEach(async () => {
  fake = await startFakeKube({ namespaces: ['default', 'shop'] });
  now = Date.parse('2025-01-01T12:00:00.000Z');
});
afterEach(async () => {
  await fake.stop();
});

function lease(holder: string, extra: Partial<ConstructorParameters<typeof RolloutLease>[0]> = {}): RolloutLease {
  const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
  return new RolloutLease({ kc, namespace: 'shop', target: 'checkout', holder, durationSeconds: 60, clock, retry: { sleep: async () => undefined }, ...extra });
}

const spec = () => fake.get('Lease', 'shop', 'checkout-canary')?.['spec'] as { holderIdentity?: string; renewTime?: string; leaseTransitions?: number };

describe('RolloutLease', () => {
  it('acquires a new lease with MicroTime timestamps the API server accepts', async () => {
    await lease('ci-run-1').acquire();
    expect(spec().holderIdentity).toBe('ci-run-1');
    expect(spec().renewTime).toBe('2025-01-01T12:00:00.000000Z');
    const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
    expect(await readLease(kc, 'shop', 'checkout', { clock })).toEqual({ holder: 'ci-run-1', renewTime: '2025-01-01T12:00:00.000Z', expired: false });
  });

  it('refuses a second deploy while the lease is held, naming the holder', async () => {
    await lease('ci-run-1').acquire();
    now += 20_000;
    const err = await lease('alice@laptop').acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(2);
    expect((err as CanaryError).message).toBe(
      'a rollout of checkout is already running: the lease is held by ci-run-1 (renewed 20s ago); wait for it to finish, or stop it with canary rollback checkout',
    );
    expect(spec().holderIdentity).toBe('ci-run-1');
  });

  it('takes over an expired lease', async () => {
    await lease('ci-run-1').acquire();
    now += 61_000;
    const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
    expect((await readLease(kc, 'shop', 'checkout', { clock }))?.expired).toBe(true);
    await lease('ci-run-2').acquire();
    expect(spec().holderIdentity).toBe('ci-run-2');
    expect(spec().leaseTransitions).toBe(1);
  });

  it('of two processes taking over the same expired lease, exactly one wins', async () => {
    await lease('ci-run-1').acquire();
    now += 61_000;
    const results = await Promise.allSettled([lease('a').acquire(), lease('b').acquire(), lease('c').acquire()]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused).toHaveLength(2);
    for (const r of refused) expect(String(r.reason)).toContain(`held by ${spec().holderIdentity}`);
  });

  it('renews, and a lease taken over behind its back is reported lost', async () => {
    const mine = lease('ci-run-1');
    await mine.acquire();
    now += 30_000;
    await mine.renew();
    expect(spec().renewTime).toBe('2025-01-01T12:00:30.000000Z');

    now += 61_000;
    await lease('ci-run-2').acquire();
    await expect(mine.renew()).rejects.toThrow(/taken over by ci-run-2/);
  });

  it('renews on a timer and calls onLost when the lease is gone', async () => {
    const lost: string[] = [];
    const mine = lease('ci-run-1', { durationSeconds: 0.09, onLost: (why) => lost.push(why) });
    await mine.acquire();
    mine.startRenewing();
    await waitFor(() => fake.requests.filter((r) => r.method === 'PUT').length >= 2);
    fake.remove('Lease', 'shop', 'checkout-canary');
    await waitFor(() => lost.length > 0);
    expect(lost[0]).toMatch(/the Lease shop\/checkout-canary was deleted while this deploy held it/);
    await mine.release();
  });

  it('names the new holder when another deploy took the lease over', async () => {
    const lost: { why: string; holder: string | undefined }[] = [];
    const mine = lease('ci-run-1', { durationSeconds: 0.09, onLost: (why, holder) => lost.push({ why, holder }) });
    await mine.acquire();
    mine.startRenewing();
    // Our renewals stall (a partition, say) long enough for the lease to expire and be taken.
    now += 61_000;
    await lease('ci-run-2').acquire();
    await waitFor(() => lost.length > 0);
    expect(lost[0]).toEqual({ why: 'the Lease shop/checkout-canary was taken over by ci-run-2 while this deploy held it', holder: 'ci-run-2' });
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

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!condition()) throw new Error('condition never became true');
}
