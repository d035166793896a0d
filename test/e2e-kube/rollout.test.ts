import { expect, it } from 'vitest';
import { CANARY, NEW_IMAGE, OLD_IMAGE, TARGET } from '../support/real-kube/world.js';
import { realKubeDescribe } from '../support/real-kube/tier.js';

// Whole rollouts through the CLI against a real kube-apiserver: what the cluster holds afterwards,
// and what it held at every moment in between (the watched history), is what is asserted.

realKubeDescribe('rollouts on a real API server', (tier) => {
  it('promotes a healthy canary: 10 → 25 → 50 → 100 → 0, stable on the new image, canary scaled away, lease given back', async () => {
    const { world } = tier;
    const run = await world.deploy().done;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('PROMOTED');

    expect(await world.weight()).toBe(0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25, 50, 100]);
    expect(await world.deployment(TARGET)).toMatchObject({ image: NEW_IMAGE, replicas: 3, available: 3 });
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'promoted', weight: 0, images: { stable: NEW_IMAGE, canary: NEW_IMAGE } });
    expect(await world.lease()).toBeUndefined();
    expect(world.history.violations()).toEqual([]);
    void OLD_IMAGE;
  });
});
