import { expect, it } from 'vitest';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { rollbackCommand } from '../support/live-harness.js';
import { CANARY, NEW_IMAGE, OLD_IMAGE, TARGET } from '../support/real-kube/world.js';

// A deploy that is stopped (SIGTERM, a cancelled CI job) or dies (SIGKILL, a lost runner) in the
// middle of a step, on a real API server. The test holds the rollout at 25% with Prometheus
// answers that leave the step unjudged, and acts once it reads 25% in the API.

realKubeDescribe('a deploy stopped or killed mid-step on a real API server', (tier) => {
  it('SIGTERM: the canary goes to 0%, is scaled down, the lease is released, exit 4', async () => {
    const { world } = tier;
    const deploy = await world.deployHeldAt(25);
    deploy.child.kill('SIGTERM');
    expectExit(await deploy.done, 4);

    expect(await world.weight()).toBe(0);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.lease()).toBeUndefined();
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0 });
    expect((await world.deployment(TARGET))?.image).toBe(OLD_IMAGE);
    expect(world.history.violations()).toEqual([]);
  });

  it('SIGKILL, then `canary rollback`, then a new deploy at once: the dead deploy\'s lease does not refuse it', async () => {
    const { world } = tier;
    // A long lease, so that the new deploy cannot succeed merely because the old lease ran out.
    const policy = await world.writePolicy('long-lease', { leaseDuration: '120s' });
    const deploy = await world.deployHeldAt(25, { policy });
    deploy.child.kill('SIGKILL');
    expect((await deploy.done).signal).toBe('SIGKILL');
    expect(await world.weight()).toBe(25);

    const stop = await world.run(rollbackCommand(world.namespace, 'runner lost'), { policy });
    expectExit(stop, 0);
    expect(await world.weight()).toBe(0);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0 });

    world.setMetrics({ kind: 'healthy' });
    const next = await world.deploy([], { policy }).done;
    expect(next.stderr).not.toContain('lease is held by');
    expectExit(next, 0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: NEW_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({ phase: 'promoted', weight: 0 });
    expect(world.history.violations()).toEqual([]);
  }, 120_000);

  it('SIGKILL, then `deploy --resume` once the lease has expired: the same rollout completes, keeping its checks', async () => {
    const { world } = tier;
    // The deploy runs with the tier's 60 s lease, so a loaded machine cannot make it lose the
    // lease before the kill; once it is dead, its Lease is made what it would be long after: a
    // 5 s lease last renewed ten minutes ago (expired, with no wait on a clock here), so the
    // resume waits 5 s of observed silence (its own rule), not 60.
    world.setMetrics({ kind: 'hold', atOrAbove: 25 });
    const deploy = world.deploy();
    await world.until('a check at the 25% step', async () => (await world.weight()) === 25 && ((await world.record())?.checks ?? []).some((c) => c.stepIndex === 1));
    deploy.child.kill('SIGKILL');
    expect((await deploy.done).signal).toBe('SIGKILL');

    const before = await world.record();
    expect(before).toMatchObject({ phase: 'progressing', stepIndex: 1, weight: 25 });
    const lastCheck = before?.checks.at(-1);
    expect(await world.weight()).toBe(25);
    await world.ageLease();
    expect(await world.leaseExpired()).toBe(true);

    world.setMetrics({ kind: 'healthy' });
    const resumed = await world.deploy(['--resume']).done;
    expectExit(resumed, 0);
    expect(resumed.stdout).toContain(`resuming rollout ${before?.id}`);

    const after = await world.record();
    expect(after).toMatchObject({ id: before?.id, phase: 'promoted', weight: 0, images: { stable: NEW_IMAGE, canary: NEW_IMAGE } });
    expect(after?.checks.some((c) => c.at === lastCheck?.at)).toBe(true);
    expect(await world.weight()).toBe(0);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: NEW_IMAGE, available: 3 });
    expect(await world.lease()).toBeUndefined();
    expect(world.history.violations()).toEqual([]);
  }, 120_000);
});
