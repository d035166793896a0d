import { describe, expect, it } from 'vitest';
import { LEASE, NAMESPACE, useLiveWorld, waitFor } from '../support/live-harness.js';

// A deploy whose Lease is taken by another process (here: between its renewal's read and write,
// so the renewal conflicts) hands the rollout over: it names the new holder and stops without
// touching traffic, instead of reading the conflict as "unreachable" and setting weight 0 under
// the process that now drives the rollout.

const world = useLiveWorld();

const NEW_HOLDER = 'run 5151 attempt 1 on other-host pid 99 #abcdef';

describe('a lease taken over by another deploy', () => {
  it('is named in the renewal conflict, and the old deploy exits 4 leaving traffic to the new holder', async () => {
    // Held at 10% until the takeover, with a 30 s lease: renewed every 5 s, so a renewal comes
    // while it is held, and its renew deadline (20 s) is far from anything a loaded machine
    // does to one renewal (a 6 s lease left 4 s, and a slow renewal lost the lease on its own).
    // The takeover is gated on that renewal's write reaching the API server, not on a time.
    const policy = await world.writePolicy('lease-30s', { leaseDuration: '30s' });
    world.holdAt(10);
    const deploy = world.deploy([], { policy });
    await waitFor('the deploy to route 10% and record a check', () => world.weight() === '10' && (world.record()?.checks.length ?? 0) >= 1);

    let weightAtTakeover: string | undefined;
    // The next renewal's write: just before it is served, the other process takes the Lease.
    const takeover = world.fake.injectFault({
      kind: 'before',
      method: 'PUT',
      pathPattern: `/leases/${LEASE}`,
      run: () => {
        weightAtTakeover = world.weight();
        const lease = world.fake.get('Lease', NAMESPACE, LEASE);
        const spec = { ...(lease?.['spec'] as Record<string, unknown>), holderIdentity: NEW_HOLDER, renewTime: new Date().toISOString().replace('Z', '000Z') };
        world.fake.put({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: LEASE, namespace: NAMESPACE }, spec });
      },
    });
    const run = await deploy.done;
    expect(takeover.hits).toBe(1);
    // Its own renewal conflicted with the takeover.
    expect(world.fake.requests.some((r) => r.method === 'PUT' && r.path.endsWith(`/leases/${LEASE}`) && r.status === 409)).toBe(true);
    expect(run.code).toBe(4);
    expect(run.stdout + run.stderr).toContain(`the Lease ${NAMESPACE}/${LEASE} was taken over by ${NEW_HOLDER} while this deploy held it`);
    // Traffic is the new holder's: never sent to 0 by the deploy that lost the Lease.
    expect(weightAtTakeover).toBe('10');
    expect(world.weight()).not.toBe('0');
    expect(world.fake.writes().filter((w) => w.method === 'PATCH' && w.path.includes('/ingresses/') && JSON.stringify(w.body).includes('"0"'))).toEqual([]);
    // And the Lease stays the new holder's.
    expect((world.fake.get('Lease', NAMESPACE, LEASE)?.['spec'] as { holderIdentity?: string }).holderIdentity).toBe(NEW_HOLDER);
  });
});
