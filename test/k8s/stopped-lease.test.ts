// `canary rollback` deletes the Lease of the deploy it stopped, and only that one: the delete
// carries the resourceVersion and uid it read when the stop began (issue 16 item 4).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect } from '../../src/k8s/connection.js';
import { StoppedLeaseCleaner } from '../../src/k8s/stopped-lease.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/server.js';

let fake: FakeKube;
beforeEach(async () => {
  fake = await startFakeKube({ namespaces: ['shop'] });
});
afterEach(async () => {
  await fake.stop();
});

function writeLease(holder: string, renewTime: string): void {
  fake.put({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'checkout-canary', namespace: 'shop' },
    spec: { holderIdentity: holder, leaseDurationSeconds: 60, acquireTime: renewTime, renewTime },
  });
}

const cleaner = () => new StoppedLeaseCleaner(connect({ kubeconfig: fake.kubeconfigPath }).kc, 'shop', 'checkout', { sleep: async () => undefined });
const holder = () => (fake.get('Lease', 'shop', 'checkout-canary')?.['spec'] as { holderIdentity?: string } | undefined)?.holderIdentity;

describe('StoppedLeaseCleaner', () => {
  it('deletes the lease the stop saw, unchanged since', async () => {
    writeLease('dead-deploy', '2025-01-01T12:00:00.000000Z');
    const c = cleaner();
    const seen = await c.observe();
    expect(seen?.holder).toBe('dead-deploy');
    expect(await c.clear(seen)).toEqual({ result: 'deleted' });
    expect(fake.get('Lease', 'shop', 'checkout-canary')).toBeUndefined();
  });

  it('keeps a lease taken by a deploy that started after the stop read it, naming its holder', async () => {
    writeLease('dead-deploy', '2025-01-01T12:00:00.000000Z');
    const c = cleaner();
    const seen = await c.observe();
    // A new deploy takes the (expired) lease over between the stop's read and its delete.
    writeLease('new-deploy', '2025-01-01T12:05:00.000000Z');
    expect(await c.clear(seen)).toEqual({ result: 'kept', holder: 'new-deploy' });
    expect(holder()).toBe('new-deploy');
  });

  it('keeps a lease created after the stop found none', async () => {
    const c = cleaner();
    const seen = await c.observe();
    expect(seen).toBeNull();
    writeLease('new-deploy', '2025-01-01T12:05:00.000000Z');
    expect(await c.clear(seen)).toEqual({ result: 'kept', holder: 'new-deploy' });
    expect(holder()).toBe('new-deploy');
  });

  it('a lease already gone is absent', async () => {
    writeLease('dead-deploy', '2025-01-01T12:00:00.000000Z');
    const c = cleaner();
    const seen = await c.observe();
    fake.remove('Lease', 'shop', 'checkout-canary');
    expect(await c.clear(seen)).toEqual({ result: 'absent' });
  });
});
