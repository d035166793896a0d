import { expect, it } from 'vitest';
import { imageOf } from '../support/real-kube/deployment-controller.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { CANARY, NEW_IMAGE, OLD_IMAGE, rollbackArgs, TARGET } from '../support/real-kube/world.js';

// Whole rollouts through the CLI against a real kube-apiserver. Asserted: what the cluster holds
// afterwards, what it held at every moment in between (the watched history: never traffic to a
// canary without pods, never a lease released or a rollback recorded while traffic was on the
// canary), and exit codes. A step is held where the test needs it by Prometheus answers that
// leave the step unjudged; the test gates on the weight it reads from the API, never on time.

realKubeDescribe('rollouts on a real API server', (tier) => {
  it('promotes a healthy canary: 10 → 25 → 50 → 100 → 0, stable on the new image, canary scaled away, lease given back', async () => {
    const { world } = tier;
    const run = await world.deploy().done;
    expect(run.stderr).toBe('');
    expectExit(run, 0);
    expect(run.stdout).toContain('PROMOTED');

    expect(await world.weight()).toBe(0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25, 50, 100]);
    expect(await world.deployment(TARGET)).toMatchObject({ image: NEW_IMAGE, replicas: 3, available: 3 });
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'promoted', weight: 0, images: { stable: NEW_IMAGE, canary: NEW_IMAGE } });
    expect(await world.lease()).toBeUndefined();
    expect(world.history.violations()).toEqual([]);
  });

  it('rolls back by analysis: a canary failing 12% of requests goes to 0%, exit 3, stable untouched', async () => {
    const { world } = tier;
    world.setMetrics({ kind: 'canary-errors' });
    const run = await world.deploy().done;
    expectExit(run, 3);
    expect(run.stdout).toContain('ROLLED BACK');

    expect(await world.weight()).toBe(0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10]);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({ phase: 'rolled-back', weight: 0, outcome: { exitCode: 3 } });
    expect(await world.lease()).toBeUndefined();
    expect(world.history.violations()).toEqual([]);
  });

  it('operator rollback while progressing: the canary goes to 0% and is scaled away, the deploy exits 4', async () => {
    const { world } = tier;
    const deploy = await world.deployHeldAt(25);

    const stop = await world.run(rollbackArgs(world));
    expectExit(stop, 0);
    expect(await world.weight()).toBe(0);
    const run = await deploy.done;
    expectExit(run, 4);

    expect(await world.weight()).toBe(0);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0, images: { stable: OLD_IMAGE } });
    expect(await world.lease()).toBeUndefined();
    expect(world.history.violations()).toEqual([]);
  });

  it('operator rollback while promoting: traffic to 0% first, then stable back on the recorded stable image', async () => {
    const { world } = tier;
    // Stable's rollout to the new image never completes: the deploy stays in its promotion.
    world.controller.set(TARGET, (d) => (imageOf(d) === NEW_IMAGE ? 'frozen' : 'ready'));
    const policy = await world.writePolicy('promoting', { readyTimeout: '45s' });
    const deploy = world.deploy([], { policy });
    await world.until('the deploy to be promoting, with stable patched to the new image', async () => {
      return (await world.record())?.phase === 'promoting' && (await world.deployment(TARGET))?.image === NEW_IMAGE;
    });
    expect(await world.weight()).toBe(100);

    const stop = await world.run(rollbackArgs(world), { policy });
    expectExit(stop, 0);
    expect(await world.weight()).toBe(0);
    // Stable runs the image it ran before the rollout, all replicas available on that template.
    const stable = await world.deployment(TARGET);
    expect(stable).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(stable?.observedGeneration).toBe(stable?.generation);

    const run = await deploy.done;
    expectExit(run, 4);
    expect(await world.weight()).toBe(0);
    expect((await world.deployment(TARGET))?.image).toBe(OLD_IMAGE);
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0, images: { stable: OLD_IMAGE } });
    expect(world.history.violations()).toEqual([]);
  }, 120_000);

  it('rollback racing a deploy raise held in flight: the weight ends 0 and stays 0; the canary never keeps traffic without pods', async () => {
    const { world } = tier;
    const { proxy, kubeconfig } = await world.proxy();
    // The deploy waits for its held raise as long as the test holds it, without timing out and retrying.
    const patient = await world.writePolicy('patient', { kubeTimeout: '120s' });
    const deploy = await world.deployHeldAt(10, { env: { KUBECONFIG: kubeconfig }, policy: patient });

    // The deploy's raise to 25% will be held by the proxy until the rollback is done.
    const raise = proxy.hold({ method: 'PATCH', path: `/ingresses/${CANARY}`, bodyIncludes: '"25"', times: 100 });
    world.setMetrics({ kind: 'healthy' });
    await world.until('the raise to 25% to be in flight', async () => raise.held.length > 0);

    const stop = await world.run(rollbackArgs(world));
    expectExit(stop, 0);
    expect(await world.weight()).toBe(0);

    raise.release();
    const run = await deploy.done;
    expectExit(run, 4);

    expect(await world.weight()).toBe(0);
    expect(world.history.weightsOf(CANARY)).not.toContain(25);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0 });
    expect(world.history.violations()).toEqual([]);
  });

  it('refuses a concurrent deploy, naming the holder of the lease, and the second writes nothing', async () => {
    const { world } = tier;
    const first = await world.deployHeldAt(10);
    const holder = (await world.lease())?.holder ?? '';
    expect(holder).not.toBe('');
    const recordBefore = await world.record();

    // The second deploy is another CI run, through a proxy that shows every call it makes.
    const { proxy, kubeconfig } = await world.proxy();
    const second = await world.run(['deploy', TARGET, '-n', world.namespace, '--image', 'registry.example.com/shop/checkout:3.0.0'], {
      env: { KUBECONFIG: kubeconfig, GITHUB_RUN_ID: '5151' },
    });
    expectExit(second, 2);
    expect(second.stderr).toContain(`lease is held by ${holder}`);
    expect(proxy.calls.length).toBeGreaterThan(0);
    expect(proxy.calls.filter((c) => c.method !== 'GET' && !c.path.endsWith('/selfsubjectaccessreviews'))).toEqual([]);
    expect(await world.record()).toMatchObject({ id: recordBefore?.id, images: recordBefore?.images, startedBy: recordBefore?.startedBy });
    expect((await world.deployment(CANARY))?.image).toBe(NEW_IMAGE);
    expect(await world.weight()).toBe(10);
    expect((await world.lease())?.holder).toBe(holder);

    world.setMetrics({ kind: 'healthy' });
    const run = await first.done;
    expectExit(run, 0);
    expect(world.history.violations()).toEqual([]);
  });

  it('as the deployer user bound only to examples/rbac.yaml: a deploy, a rollback of it, and a new deploy that promotes', async () => {
    const { world } = tier;
    const kubeconfig = await world.bindDeployer();
    const env = { KUBECONFIG: kubeconfig };
    const deploy = await world.deployHeldAt(25, { env });

    const stop = await world.run(rollbackArgs(world), { env });
    expect(stop.stderr).toBe('');
    expectExit(stop, 0);
    expectExit(await deploy.done, 4);
    expect(await world.weight()).toBe(0);

    world.setMetrics({ kind: 'healthy' });
    const again = await world.deploy([], { env }).done;
    expect(again.stderr).toBe('');
    expectExit(again, 0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: NEW_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({ phase: 'promoted', weight: 0 });

    const status = await world.run(['status', TARGET, '-n', world.namespace], { env });
    expectExit(status, 0);
    expect(status.stdout).toContain('phase:   promoted');
    expect(world.history.violations()).toEqual([]);
  }, 120_000);
});
