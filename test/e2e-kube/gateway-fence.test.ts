import { expect, it } from 'vitest';
import { connect } from '../../src/k8s/connection.js';
import { GatewayRouter } from '../../src/k8s/gateway-router.js';
import { FENCE_ANNOTATION } from '../../src/k8s/labels.js';
import { targetNames } from '../../src/policy/policy.js';
import { StopRequestedError } from '../../src/rollout/ports.js';
import { gatewayWorld, ROUTE, routeAccepted } from '../support/real-kube/gateway.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { atWeight, LEASE, rollbackArgs, TARGET } from '../support/real-kube/world.js';

// Issue 16 item 5 on the Gateway API router, against the real API server and the upstream CRDs:
// the fence is the holder's token (lease identity + epoch), so a predecessor that a `--resume`
// replaced (same rollout id, its own token) loses every write after the claim.

const T1 = 'run 1 attempt 1 pid 7 #aaaaaa epoch 0';
const T2 = 'run 2 attempt 1 pid 9 #bbbbbb epoch 1';
const ROLLOUT = 'checkout-20261207T052000Z';

realKubeDescribe('the fence token on the Gateway API router (real API server)', (tier) => {
  const routerFor = (fenceToken: string, kubeconfig = tier.cluster.kubeconfigs.admin) =>
    new GatewayRouter({
      kc: connect({ kubeconfig }).kc,
      namespace: tier.world.namespace,
      names: targetNames(TARGET, {}),
      httpRoute: ROUTE,
      target: TARGET,
      rolloutId: ROLLOUT,
      fenceToken,
      retry: { attempts: 1 },
    });

  it("the predecessor loses: A prepares and raises, B (same rollout, its own token) claims, A's next raise and its fence check fail, the weight stays B's", async () => {
    const gw = await gatewayWorld(tier);
    try {
      const a = routerFor(T1);
      await a.prepare();
      expect((await gw.route())?.metadata?.annotations?.[FENCE_ANNOTATION]).toBe(T1);
      await a.setWeight(10);
      const b = routerFor(T2);
      await b.claim();
      expect((await gw.route())?.metadata?.annotations?.[FENCE_ANNOTATION]).toBe(T2);
      await b.setWeight(25);

      const err = await a.setWeight(50).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StopRequestedError);
      expect((err as StopRequestedError).by).toContain(T2);
      expect(await gw.weight()).toBe(25);
      expect(gw.history.weights()).not.toContain(50);
      // A's promotion would be refused too (the fence a write to stable is tied to); B's passes.
      await expect(a.checkFence()).rejects.toBeInstanceOf(StopRequestedError);
      await b.checkFence();
      // B's own raises go on.
      await b.setWeight(50);
      expect(await gw.weight()).toBe(50);
    } finally {
      await gw.dispose();
    }
  });

  it("a raise of A held in flight while B claims: the API server refuses it (422, the holder's test op), A re-reads and stops, the weight stays B's", async () => {
    const gw = await gatewayWorld(tier);
    try {
      const { proxy, kubeconfig } = await tier.world.proxy();
      const a = routerFor(T1, kubeconfig);
      await a.prepare();
      await a.setWeight(10);
      // A's raise to 25% (stable 75) is held after A read the route and built its patch.
      const held = proxy.hold({ method: 'PATCH', path: `/httproutes/${ROUTE}`, bodyIncludes: '"value":75' });
      const raise = a.setWeight(25).catch((e: unknown) => e);
      await tier.world.until("A's raise to be in flight", async () => held.held.length > 0);
      const b = routerFor(T2);
      await b.claim();
      held.release();
      const err = await raise;
      expect(err).toBeInstanceOf(StopRequestedError);
      expect((err as StopRequestedError).by).toContain(T2);
      const patches = proxy.calls.filter((c) => c.method === 'PATCH' && c.path.includes(`/httproutes/${ROUTE}`) && c.body.includes('"value":75'));
      expect(patches.map((c) => c.status)).toEqual([422]);
      expect(await gw.weight()).toBe(10);
      expect(gw.history.weights()).not.toContain(25);
    } finally {
      await gw.dispose();
    }
  });

  it('through the CLI: `deploy --resume` after a SIGKILL claims the route with its own token before its first raise', async () => {
    const { world } = tier;
    const gw = await gatewayWorld(tier);
    try {
      await world.until('the test Gateway controller to accept the route', () => routeAccepted(world, gw));
      const first = await world.deployHeldAt(10, { policy: gw.policy, route: gw });
      const holderOf = async () => (await gw.route())?.metadata?.annotations?.[FENCE_ANNOTATION];
      const t1 = await holderOf();
      expect(t1).toMatch(/ epoch \d+$/);
      first.child.kill('SIGKILL');
      expect((await first.done).signal).toBe('SIGKILL');
      // As in process-death.test.ts: the dead deploy's lease shortened to 5 s, so the resume waits 5 s, not 60.
      await world.api.mergePatch(`/apis/coordination.k8s.io/v1/namespaces/${world.namespace}/leases/${LEASE}`, { spec: { leaseDurationSeconds: 5 } });
      await world.until("the dead deploy's lease to expire", () => world.leaseExpired());

      world.setMetrics({ kind: 'hold', atOrAbove: 25 });
      const resumed = world.deploy(['--resume'], { policy: gw.policy });
      await world.until('the resumed deploy to hold at 25%', atWeight(world, 25, gw), 90_000).catch(async (e: unknown) => {
        resumed.child.kill('SIGTERM');
        const r = await resumed.done;
        throw new Error(`${String(e)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
      });
      const t2 = await holderOf();
      expect(t2).not.toBe(t1);
      expect(t2).toBe(`${(await world.lease())?.holder} epoch ${t2?.split(' epoch ').at(-1)}`);
      // The dead run's token no longer passes the fence.
      const stale = routerFor(t1 as string);
      await expect(stale.setWeight(50)).rejects.toBeInstanceOf(StopRequestedError);
      expect(await gw.weight()).toBe(25);

      expectExit(await world.run(rollbackArgs(world), { policy: gw.policy }), 0);
      expectExit(await resumed.done, 4);
    } finally {
      await gw.dispose();
    }
  }, 180_000);
});
