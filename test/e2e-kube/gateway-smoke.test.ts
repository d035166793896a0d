import { afterEach, beforeEach, expect, it } from 'vitest';
import type { KubeObject } from '../support/real-kube/api.js';
import { canaryOnlyRules, canaryWeightOf, gatewayWorld, routeAccepted, SEEDED_RULES, type GatewayWorld } from '../support/real-kube/gateway.js';
import { headerProxy, type Handler, type HeaderProxy } from '../support/header-proxy.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { CANARY, OLD_IMAGE, TARGET } from '../support/real-kube/world.js';

// Smoke tests before traffic with the Gateway API router, through the CLI, on a real API server
// with the upstream Gateway API CRDs. The canary is a real loopback HTTP server behind a proxy
// that plays the Gateway's data plane for the routing header: a request carrying X-Canary: smoke
// reaches the canary only while the HTTPRoute, read from the API server at that moment, holds a
// rule matching that header to the canary Service; everything else goes to "stable". So a smoke
// request reaches the canary only through the header rule the deploy wrote.

const HEADER = 'X-Canary';
const VALUE = 'smoke';

type Match = { headers?: { name: string; value: string }[] };
/** What the Gateway would do with a request carrying the header: the route has a rule matching it to the canary alone. */
function headerReachesCanary(route: KubeObject | undefined): boolean {
  return canaryOnlyRules(route).some((r) => ((r.matches ?? []) as Match[]).some((m) => (m.headers ?? []).some((h) => h.name.toLowerCase() === HEADER.toLowerCase() && h.value === VALUE)));
}
const rulesOf = (route: KubeObject | undefined) => (route?.['spec'] as { rules?: unknown[] } | undefined)?.rules;

realKubeDescribe('smoke tests before traffic on the Gateway API router (real API server)', (tier) => {
  let gw: GatewayWorld | undefined;
  let proxy: HeaderProxy | undefined;
  let canary: Handler = () => ({ status: 200, body: '{"status":"ok"}' });
  /** The route as the proxy read it when it first sent a request to the canary. */
  let firstRouted: KubeObject | undefined;
  const gateway = (): GatewayWorld => {
    if (!gw) throw new Error('no gateway world');
    return gw;
  };
  beforeEach(async () => {
    gw = await gatewayWorld(tier);
    await tier.world.until('the test Gateway controller to accept the route', () => routeAccepted(tier.world, gateway()));
    proxy = await headerProxy(HEADER, VALUE, (r) => canary(r), () => ({ status: 503, body: 'stable: not the canary' }), async () => {
      const route = await gateway().route();
      const routed = headerReachesCanary(route);
      if (routed) firstRouted ??= route;
      return routed;
    });
  }, 180_000);
  afterEach(async () => {
    canary = () => ({ status: 200, body: '{"status":"ok"}' });
    firstRouted = undefined;
    await proxy?.close();
    await gw?.dispose();
    gw = undefined;
  });

  // A long request timeout: a smoke request the test holds must not time out on a loaded machine.
  const smokePolicy = (name: string) => {
    const url = proxy?.url ?? '';
    return gateway().writePolicy(name, {
      target: [`    headerRouting: { header: ${HEADER}, value: ${VALUE} }`],
      smokeTests: ['    tests:', `      - { name: health, url: "${url}/healthz", json: { path: status, equals: ok }, timeout: 120s }`, `      - { name: orders, url: "${url}/api/orders", body: orders, timeout: 120s }`],
    });
  };

  it('a passing suite reaches the canary through the header rule at 0%, then the rollout proceeds to 10% and on, the rule kept once', async () => {
    const { world } = tier;
    const g = gateway();
    canary = (r) => ({ status: 200, body: r.url === '/healthz' ? '{"status":"ok"}' : '{"orders":[]}' });
    const run = await world.deploy([], { policy: await smokePolicy('smoke-pass') }).done;
    expectExit(run, 0);
    expect(run.stdout).toContain('all 2 smoke tests passed before traffic');
    expect(proxy?.canary.received.map((r) => r.url)).toEqual(['/healthz', '/api/orders']);
    expect(proxy?.stable.received).toHaveLength(0);
    // The first smoke request reached the canary through the header rule while its weight was 0.
    expect(canaryWeightOf(firstRouted)).toBe(0);

    // The watched history: the header rule arrived while the canary's weight was 0, before any raise,
    // and every version of the route held at most one rule of ours.
    const versions = g.history.routes();
    const firstHeader = versions.findIndex((r) => headerReachesCanary(r));
    const firstRaise = versions.findIndex((r) => (canaryWeightOf(r) ?? 0) > 0);
    expect(firstHeader).toBeGreaterThan(0);
    expect(canaryWeightOf(versions[firstHeader])).toBe(0);
    expect(firstRaise).toBeGreaterThan(firstHeader);
    expect(versions.slice(firstHeader, firstRaise + 1).every((r) => headerReachesCanary(r))).toBe(true);
    expect(versions.every((r) => canaryOnlyRules(r).length <= 1)).toBe(true);
    expect(g.history.weights()).toEqual([undefined, 0, 10, 25, 50, 100, undefined]);
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);
    expect(g.history.violations()).toEqual([]);
    expect((await world.record())?.smokeTests?.results.map((r) => [r.name, r.ok])).toEqual([
      ['health', true],
      ['orders', true],
    ]);
  });

  it('a failing suite rolls back (exit 3) before any weight above 0 was ever written, and the header rule is gone', async () => {
    const { world } = tier;
    const g = gateway();
    canary = (r) => (r.url === '/healthz' ? { status: 200, body: '{"status":"ok"}' } : { status: 500, body: 'orders: database unreachable' });
    const run = await world.deploy([], { policy: await smokePolicy('smoke-fail') }).done;
    expectExit(run, 3);
    expect(proxy?.canary.received.map((r) => r.url)).toEqual(['/healthz', '/api/orders']);
    const out = run.stdout + run.stderr;
    expect(out).toContain(`smoke test "orders" failed: GET ${proxy?.url ?? ''}/api/orders → status 500 (status 500, expected 200); response: "orders: database unreachable"`);
    expect(out).toContain('1 of 2 smoke tests failed before traffic');

    // Never a weight above 0 on the route; the header rule was there, and a stop took it out.
    expect(g.history.weights().filter((w) => (w ?? 0) > 0)).toEqual([]);
    expect(g.history.routes().some((r) => headerReachesCanary(r))).toBe(true);
    const route = await g.route();
    expect(canaryOnlyRules(route)).toEqual([]);
    expect(rulesOf(route)).toEqual(SEEDED_RULES);
    expect(route?.metadata?.annotations?.['canary-cli.dev/header-rule']).toBeUndefined();
    expect(route?.metadata?.annotations?.['canary-cli.dev/stop']).toContain('smoke test');
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.record()).toMatchObject({ phase: 'rolled-back', weight: 0, outcome: { exitCode: 3 } });
    expect((await world.record())?.smokeTests?.results.find((r) => r.name === 'orders')).toMatchObject({ ok: false, status: 500, excerpt: 'orders: database unreachable' });
    expect(await world.lease()).toBeUndefined();
    expect(g.history.violations()).toEqual([]);
  });

  it('`canary rollback` during the smoke phase takes the header rule out (the route stable alone), and the deploy exits 4 without ever raising', async () => {
    const { world } = tier;
    const g = gateway();
    let let_go: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (let_go = resolve));
    canary = async (r) => {
      if (r.url === '/healthz') await held;
      return { status: 200, body: r.url === '/healthz' ? '{"status":"ok"}' : '{"orders":[]}' };
    };
    const policy = await smokePolicy('smoke-stopped');
    const deploy = world.deploy([], { policy });
    await world.until('the first smoke request to reach the canary', async () => (proxy?.canary.received.length ?? 0) > 0);
    expect(headerReachesCanary(await g.route())).toBe(true);

    const stop = await world.run(['rollback', TARGET, '-n', world.namespace, '--reason', 'pager: smoke phase'], { policy });
    expectExit(stop, 0);
    const route = await g.route();
    expect(canaryOnlyRules(route)).toEqual([]);
    expect(rulesOf(route)).toEqual(SEEDED_RULES);
    expect(route?.metadata?.annotations?.['canary-cli.dev/header-rule']).toBeUndefined();
    expect(route?.metadata?.annotations?.['canary-cli.dev/stop']).toContain('pager: smoke phase');

    let_go();
    const run = await deploy.done;
    expectExit(run, 4);
    expect(g.history.weights().filter((w) => (w ?? 0) > 0)).toEqual([]);
    expect(rulesOf(await g.route())).toEqual(SEEDED_RULES);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE });
    expect(await world.record()).toMatchObject({ phase: 'aborted', weight: 0 });
    expect(g.history.violations()).toEqual([]);
  });
});
