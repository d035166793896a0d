import { expect, it } from 'vitest';
import { imageOf } from '../support/real-kube/deployment-controller.js';
import { canaryOnlyRules, deployerHeldAt25, ROUTE, routeAccepted, SEEDED_RULES, useGatewayWorld, type GatewayWorld } from '../support/real-kube/gateway.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { rollbackCommand } from '../support/live-harness.js';
import { CANARY, NEW_IMAGE, OLD_IMAGE, rollbackArgs, TARGET } from '../support/real-kube/world.js';

// Whole rollouts through the CLI with the Gateway API router (spec.traffic.router: gateway-api),
// against a real kube-apiserver with the upstream Gateway API v1.6.1 CRDs. The test plays the
// Deployment controller and the Gateway controller (the route's status.parents). Asserted: what
// the cluster holds afterwards, what it held at every moment in between (the watched history:
// never traffic to a canary without pods, never a lease released or a rollback recorded while the
// route still sent the canary traffic), and exit codes. Steps are held by Prometheus answers that
// leave them unjudged; the test gates on what it reads from the API, never on time.

type Spec = { rules?: { name?: string; backendRefs?: unknown[]; matches?: unknown[] }[] };
const rulesOf = (route: { [k: string]: unknown } | undefined) => (route?.['spec'] as Spec | undefined)?.rules;
const annotation = async (gw: GatewayWorld, key: string) => (await gw.route())?.metadata?.annotations?.[key];

realKubeDescribe('rollouts through an HTTPRoute (Gateway API) on a real API server', (tier) => {
  const gateway = useGatewayWorld(tier);

  it('promotes: 10 → 25 → 50 → 100 as backendRef weight pairs, then the rule is stable alone again, as it was', async () => {
    const { world } = tier;
    const g = gateway();
    const run = await world.deploy([], { policy: g.policy }).done;
    expect(run.stderr).toBe('');
    expectExit(run, 0);
    expect(run.stdout).toContain('PROMOTED');

    // The canary's share as the route held it: added at 0, raised, then removed (undefined).
    expect(g.history.weights()).toEqual([undefined, 0, 10, 25, 50, 100, undefined]);
    // Every raise was a pair summing to 100.
    for (const route of g.history.routes()) {
      const refs = (rulesOf(route)?.[1]?.backendRefs ?? []) as { name: string; weight: number }[];
      if (refs.length === 2 && refs[1]?.weight !== 0) expect((refs[0]?.weight ?? 0) + (refs[1]?.weight ?? 0)).toBe(100);
    }
    const route = await g.route();
    expect(rulesOf(route)).toEqual(SEEDED_RULES);
    expect(route?.metadata?.annotations?.['canary-cli.dev/canary-backend-ref']).toBeUndefined();
    expect(await world.deployment(TARGET)).toMatchObject({ image: NEW_IMAGE, replicas: 3, available: 3 });
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'promoted', weight: 0, images: { stable: NEW_IMAGE, canary: NEW_IMAGE } });
    expect(await world.lease()).toBeUndefined();
    expect(g.history.violations()).toEqual([]);
    // The Gateway controller the test plays saw every generation the rollout wrote.
    await world.until('the last generation to be accepted', () => routeAccepted(world, g));
  });

  it('rolls back by analysis: a canary failing 12% of requests is removed from the route, exit 3, stable untouched', async () => {
    const { world } = tier;
    const g = gateway();
    world.setMetrics({ kind: 'canary-errors' });
    const run = await world.deploy([], { policy: g.policy }).done;
    expectExit(run, 3);
    expect(run.stdout).toContain('ROLLED BACK');

    expect(g.history.weights().filter((w) => (w ?? 0) > 0)).toEqual([10]);
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);
    expect(await annotation(g, 'canary-cli.dev/stop')).toEqual(expect.stringMatching(/\S/));
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({ phase: 'rolled-back', weight: 0, outcome: { exitCode: 3 } });
    expect(await world.lease()).toBeUndefined();
    expect(g.history.violations()).toEqual([]);
  });

  it('`canary rollback` while progressing, with header routing: weight and header rule gone in one write, the deploy exits 4', async () => {
    const { world } = tier;
    const g = gateway();
    const policy = await g.writePolicy('header', { target: ['    headerRouting: { header: X-Canary, value: smoke }'] });
    const deploy = await world.deployHeldAt(25, { policy, route: gateway() });
    const live = await g.route();
    expect(canaryOnlyRules(live)).toEqual([
      {
        name: 'canary-cli-smoke-test',
        matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'X-Canary', value: 'smoke' }] }],
        backendRefs: [{ kind: 'Service', name: CANARY, port: 80, weight: 1 }],
      },
    ]);

    const stop = await world.run(rollbackArgs(world), { policy });
    expectExit(stop, 0);
    expect(await g.weight()).toBeUndefined();
    expect(canaryOnlyRules(await g.route())).toEqual([]);
    const run = await deploy.done;
    expectExit(run, 4);

    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);
    expect(await annotation(g, 'canary-cli.dev/stop')).toContain('pager');
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0, images: { stable: OLD_IMAGE } });
    expect(await world.lease()).toBeUndefined();
    expect(g.history.violations()).toEqual([]);
    // The header rule and the weight left the route in the same write.
    const versions = g.history.routes();
    const firstWithout = versions.findIndex((r, i) => i > 0 && canaryOnlyRules(r).length === 0 && canaryOnlyRules(versions[i - 1]).length > 0);
    expect(firstWithout).toBeGreaterThan(0);
    expect(rulesOf(versions[firstWithout])).toEqual(SEEDED_RULES);
  });

  it('`canary rollback` while promoting: the route goes back to stable alone first, then stable back on the recorded image', async () => {
    const { world } = tier;
    const g = gateway();
    world.controller.set(TARGET, (d) => (imageOf(d) === NEW_IMAGE ? 'frozen' : 'ready'));
    const policy = await g.writePolicy('promoting', { readyTimeout: '45s' });
    const deploy = world.deploy([], { policy });
    await world.until('the deploy to be promoting, with stable patched to the new image', async () => {
      return (await world.record())?.phase === 'promoting' && (await world.deployment(TARGET))?.image === NEW_IMAGE;
    });
    expect(await g.weight()).toBe(100);

    const stop = await world.run(rollbackArgs(world), { policy });
    expectExit(stop, 0);
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);
    const stable = await world.deployment(TARGET);
    expect(stable).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(stable?.observedGeneration).toBe(stable?.generation);

    const run = await deploy.done;
    expectExit(run, 4);
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0, images: { stable: OLD_IMAGE } });
    expect(g.history.violations()).toEqual([]);
  }, 120_000);

  it('two `canary rollback` at once: both exit 0, one stop marker, the route stable alone, the deploy exits 4', async () => {
    const { world } = tier;
    const g = gateway();
    const deploy = await world.deployHeldAt(25, { policy: g.policy, route: gateway() });

    const [a, b] = await Promise.all([
      world.run(rollbackCommand(world.namespace, 'pager one'), { policy: g.policy }),
      world.run(rollbackCommand(world.namespace, 'pager two'), { policy: g.policy }),
    ]);
    expectExit(a, 0);
    expectExit(b, 0);
    expect(await g.weight()).toBeUndefined();
    const marker = (await annotation(g, 'canary-cli.dev/stop')) ?? '';
    expect([marker.includes('pager one'), marker.includes('pager two')].filter(Boolean)).toHaveLength(1);

    const run = await deploy.done;
    expectExit(run, 4);
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0 });
    expect(await world.lease()).toBeUndefined();
    expect(g.history.violations()).toEqual([]);
  }, 120_000);

  it('rollback racing a raise held in flight: the stale raise fails its test (422), is re-read, meets the stop marker, and the deploy exits 4', async () => {
    const { world } = tier;
    const g = gateway();
    const { proxy, kubeconfig } = await world.proxy();
    const patient = await g.writePolicy('patient', { kubeTimeout: '120s' });
    const deploy = await world.deployHeldAt(10, { env: { KUBECONFIG: kubeconfig }, policy: patient, route: gateway() });

    // The deploy's raise to 25% (stable 75) is held by the proxy until the rollback is done.
    const raise = proxy.hold({ method: 'PATCH', path: `/httproutes/${ROUTE}`, bodyIncludes: '"value":75', times: 100 });
    world.setMetrics({ kind: 'healthy' });
    await world.until('the raise to 25% to be in flight', async () => raise.held.length > 0);

    const stop = await world.run(rollbackArgs(world), { policy: patient });
    expectExit(stop, 0);
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);

    raise.release();
    const run = await deploy.done;
    expectExit(run, 4);

    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);
    expect(g.history.weights()).not.toContain(25);
    // The released raise reached the API server and was refused; the deploy read the route again.
    const patches = proxy.calls.filter((c) => c.method === 'PATCH' && c.path.includes(`/httproutes/${ROUTE}`));
    expect(patches.filter((c) => c.body.includes('"value":75')).map((c) => c.status)).toEqual([422]);
    // After the 422 it read the route again (and found the stop marker) instead of retrying the write.
    const after = proxy.calls.slice(proxy.calls.findIndex((c) => c.status === 422) + 1);
    expect(after.some((c) => c.method === 'GET' && c.path.endsWith(`/httproutes/${ROUTE}`))).toBe(true);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0 });
    expect(g.history.violations()).toEqual([]);
  }, 120_000);

  it('as the deployer user bound only to examples/rbac-gateway-api.yaml (no Ingress verbs): deploy, rollback, a deploy that promotes, status', async () => {
    const { world } = tier;
    const g = gateway();
    const { env, deploy } = await deployerHeldAt25(world, g);

    // Before it reads the policy, rollback stops every router's routes: the Ingress list is 403 here, and that is not an error.
    const stop = await world.run(rollbackArgs(world), { env, policy: g.policy });
    expect(stop.stderr).toBe('');
    expectExit(stop, 0);
    expectExit(await deploy.done, 4);
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);

    world.setMetrics({ kind: 'healthy' });
    const again = await world.deploy([], { env, policy: g.policy }).done;
    expect(again.stderr).toBe('');
    expectExit(again, 0);
    expect(await world.record()).toMatchObject({ phase: 'promoted', weight: 0 });
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);

    const status = await world.run(['status', TARGET, '-n', world.namespace, '-p', g.policy], { env });
    expectExit(status, 0);
    expect(status.stdout).toContain('phase:   promoted');
    expect(g.history.violations()).toEqual([]);
  }, 120_000);

  it('`canary rollback` with a policy that does not name the router (ingress-nginx by default) still stops the HTTPRoute rollout', async () => {
    const { world } = tier;
    const g = gateway();
    const deploy = await world.deployHeldAt(25, { policy: g.policy, route: gateway() });

    // world.policyPath is the Ingress tier's policy: no spec.traffic.
    const stop = await world.run(rollbackArgs(world), { policy: world.policyPath });
    expectExit(stop, 0);
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);
    expectExit(await deploy.done, 4);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0 });
    expect(g.history.violations()).toEqual([]);
  });

  it('refuses a route it does not understand before writing anything, naming the route, the rule and why', async () => {
    const { world } = tier;
    const g = gateway();
    const path = `/apis/gateway.networking.k8s.io/v1/namespaces/${world.namespace}/httproutes/${ROUTE}`;
    await world.api.mergePatch(path, {
      spec: { rules: [...SEEDED_RULES, { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [{ kind: 'Service', name: TARGET, port: 80 }] }] },
    });
    // The test's Gateway controller writes status for the new generation: wait for it, then nothing may change.
    await world.until('the changed route to be accepted', () => routeAccepted(world, g));
    const before = await g.route();
    const run = await world.deploy([], { policy: g.policy }).done;
    expectExit(run, 2);
    expect(run.stderr).toContain(
      `HTTPRoute ${world.namespace}/${ROUTE}: spec.rules[2]: it also sends to the stable Service checkout, as spec.rules[1] does`,
    );
    expect((await g.route())?.metadata?.resourceVersion).toBe(before?.metadata?.resourceVersion);
    expect(before?.metadata?.annotations).toBeUndefined();
    expect(await world.lease()).toBeUndefined();
    expect(await world.record()).toBeUndefined();
  });

  it('refuses a policy naming an HTTPRoute that does not exist, in the preflight, before any write', async () => {
    const { world } = tier;
    const g = gateway();
    const policy = await g.writePolicy('missing', {}, ['    httpRoute: storefront']);
    const run = await world.deploy([], { policy }).done;
    expectExit(run, 2);
    expect(run.stderr).toContain(`HTTPRoute ${world.namespace}/storefront not found (the route to split; set spec.traffic.httpRoute`);
    expect(await world.lease()).toBeUndefined();
    expect(await world.record()).toBeUndefined();
    expect((await g.route())?.metadata?.annotations).toBeUndefined();
  });
});
