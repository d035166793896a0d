import { expect, it } from 'vitest';
import { FENCE_ANNOTATION } from '../../src/k8s/labels.js';
import { deployerHeldAt25, useGatewayWorld } from '../support/real-kube/gateway.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { rollbackArgs, TARGET, type World } from '../support/real-kube/world.js';

// `canary status` without -p does not know the router: it finds our routes of both kinds by label,
// so a rollout through an HTTPRoute shows its live weight too (before, it looked for a canary
// Ingress only and showed none). And the deploy writes its lease's fence token on the route.

const statusJson = async (world: World, env?: NodeJS.ProcessEnv) => {
  const run = await world.run(['status', TARGET, '-n', world.namespace, '-o', 'json'], env && { env });
  return { run, view: JSON.parse(run.stdout || '{}') as { phase?: string; weight?: { recorded: number; live: number | null; differs: boolean } } };
};

realKubeDescribe('canary status without -p for a Gateway API rollout (real API server)', (tier) => {
  const gateway = useGatewayWorld(tier);

  it("shows the HTTPRoute's live weight (no -p), and after a rollback the route at 0; the deploy's fence token is on the route", async () => {
    const { world } = tier;
    const g = gateway();
    const deploy = await world.deployHeldAt(10, { policy: g.policy, route: gateway() });

    const holder = (await g.route())?.metadata?.annotations?.[FENCE_ANNOTATION];
    expect(holder).toMatch(new RegExp(`^${(await world.lease())?.holder?.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} epoch \\d+$`));

    const { run, view } = await statusJson(world);
    expectExit(run, 0);
    expect(run.stderr).toBe('');
    expect(view.weight).toEqual({ recorded: 10, live: 10, differs: false });
    const text = await world.run(['status', TARGET, '-n', world.namespace]);
    expectExit(text, 0);
    expect(text.stdout).toContain('10% (recorded and live agree)');

    expectExit(await world.run(rollbackArgs(world)), 0);
    expectExit(await deploy.done, 4);
    const after = await statusJson(world);
    expectExit(after.run, 4);
    expect(after.view.weight).toMatchObject({ recorded: 0, live: 0 });
  }, 120_000);

  it('as the deployer bound only to examples/rbac-gateway-api.yaml (no Ingress verbs): the Ingress 403 means "not used here"', async () => {
    const { world } = tier;
    const g = gateway();
    const { env, deploy } = await deployerHeldAt25(world, g);

    const { run, view } = await statusJson(world, env);
    expect(run.stderr).toBe('');
    expectExit(run, 0);
    expect(view.weight).toEqual({ recorded: 25, live: 25, differs: false });

    expectExit(await world.run(rollbackArgs(world), { env, policy: g.policy }), 0);
    expectExit(await deploy.done, 4);
  }, 120_000);
});
