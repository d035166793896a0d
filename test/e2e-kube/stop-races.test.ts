import { expect, it } from 'vitest';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { CANARY, NEW_IMAGE, OLD_IMAGE, rollbackArgs, TARGET, type World } from '../support/real-kube/world.js';

// Two stops of one rollout at once, on the real API server: whatever order their writes land in,
// both end with one story (weight 0 read back, the record, the Lease) and exit codes that say
// what happened. The proxy holds the exact call that makes the race; the test gates on state.

const HEADER = 'nginx.ingress.kubernetes.io/canary-by-header';

async function annotations(world: World): Promise<Record<string, string>> {
  const ing = await world.api.find(`/apis/networking.k8s.io/v1/namespaces/${world.namespace}/ingresses/${CANARY}`);
  return ing?.metadata?.annotations ?? {};
}

realKubeDescribe('two stops at once on a real API server', (tier) => {
  it('two `canary rollback` at once with header routing: the one whose patch went stale re-reads, finds the work done, and exits 0 too', async () => {
    const { world } = tier;
    const policy = await world.writePolicy('header', { target: ['    headerRouting: { header: X-Canary, value: always }'] });
    world.setMetrics({ kind: 'hold', atOrAbove: 25 });
    const deploy = world.deploy([], { policy });
    await world.until('the deploy to hold at 25% with header routing on', async () => (await world.weight()) === 25 && (await annotations(world))[HEADER] === 'X-Canary');

    // A read our canary Ingress (with its header routing) and sent its 0% patch; the proxy holds it.
    const { proxy, kubeconfig } = await world.proxy();
    const held = proxy.hold({ method: 'PATCH', path: `/ingresses/${CANARY}` });
    const first = world.start(rollbackArgs(world), { policy, env: { KUBECONFIG: kubeconfig } });
    await world.until("the first rollback's 0% patch to be in flight", async () => held.held.length === 1);

    // B removes the header routing first; then A's patch, built from the older read, lands.
    const second = world.start(rollbackArgs(world), { policy });
    await world.until('the second rollback to have removed the header routing', async () => (await annotations(world))[HEADER] === undefined && (await world.weight()) === 0);
    held.release();

    const [a, b] = await Promise.all([first.done, second.done]);
    expectExit(b, 0);
    expectExit(a, 0);
    expect(`${a.stdout}${a.stderr}`).not.toContain('rejected');
    expect(a.stdout).toContain('already at 0%');
    expectExit(await deploy.done, 4);

    expect(await world.weight()).toBe(0);
    expect((await annotations(world))[HEADER]).toBeUndefined();
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0 });
    expect(await world.lease()).toBeUndefined();
    expect(world.history.violations()).toEqual([]);
  });

  // Issue 16 item 1: the PATCH that sets stable's image, delayed in the network past an
  // operator's rollback, must lose, not land on a stable the rollback has restored.
  it("a promotion write delayed past a rollback loses (409 on the resourceVersion read before the fence check): stable stays on the recorded image", async () => {
    const { world } = tier;
    const { proxy, kubeconfig } = await world.proxy();
    world.setMetrics({ kind: 'hold', atOrAbove: 50 });
    const deploy = world.deploy([], { env: { KUBECONFIG: kubeconfig } });
    await world.until('the deploy to hold at 50%', async () => (await world.weight()) === 50);
    const write = proxy.hold({ method: 'PATCH', path: `/deployments/${TARGET}`, bodyIncludes: NEW_IMAGE });
    world.setMetrics({ kind: 'healthy' });
    await world.until("the promotion's write to stable to be in flight", async () => write.held.length === 1 && !write.held[0]?.path.includes(CANARY));

    const stop = await world.run(rollbackArgs(world));
    expectExit(stop, 0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE });
    write.release();

    const run = await deploy.done;
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE });
    expectExit(run, 4);
    expect(run.stdout).toContain('lost');
    expect(proxy.calls.find((c) => c.method === 'PATCH' && c.path.endsWith(`/deployments/${TARGET}`) && c.body.includes(NEW_IMAGE))?.status).toBe(409);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(await world.weight()).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0, images: { stable: OLD_IMAGE } });
    expect(world.history.violations()).toEqual([]);
  });
});
