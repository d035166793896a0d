import { expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { connect } from '../../src/k8s/connection.js';
import { GatewayRouter } from '../../src/k8s/gateway-router.js';
import { targetNames } from '../../src/policy/policy.js';
import { StopRequestedError } from '../../src/rollout/ports.js';
import { canaryOnlyRules, GROUP_PATH, gatewayWorld, ROUTE, SEEDED_RULES } from '../support/real-kube/gateway.js';
import { realKubeDescribe } from '../support/real-kube/tier.js';
import { TARGET } from '../support/real-kube/world.js';

// The Gateway API router's own calls against the real API server and the upstream CRDs, without
// the CLI: what each write leaves in the route, the fence, and a route changed under a rollout.

realKubeDescribe('the Gateway API router on a real API server', (tier) => {
  const routerFor = (rolloutId: string, headerRouting?: { header: string; value?: string }) =>
    new GatewayRouter({
      kc: connect({ kubeconfig: tier.cluster.kubeconfigs.admin }).kc,
      namespace: tier.world.namespace,
      names: targetNames(TARGET, {}),
      httpRoute: ROUTE,
      target: TARGET,
      rolloutId,
      ...(headerRouting && { headerRouting }),
      retry: { attempts: 1 },
    });
  const rules = async (path: string) => ((await tier.world.api.get(path))['spec'] as { rules: unknown[] }).rules;

  it('prepare, raises, a stop from elsewhere (the raise then throws StopRequestedError), inspect and getWeight read back', async () => {
    const gw = await gatewayWorld(tier);
    try {
      const path = `${GROUP_PATH}/namespaces/${tier.world.namespace}/httproutes/${ROUTE}`;
      const router = routerFor('r1', { header: 'X-Canary' });
      await router.verify();
      await router.prepare();
      expect(await router.getWeight()).toBe(0);
      await router.setWeight(10);
      expect(await router.getWeight()).toBe(10);
      expect(canaryOnlyRules(await gw.route())).toHaveLength(1);
      expect(await router.inspect()).toEqual({
        ours: [{ name: ROUTE, weight: 10, overrides: ['spec.rules[2] (canary-cli-smoke-test: header match to the canary)'], stoppedBy: null, rolloutId: 'r1' }],
        foreign: [],
      });

      const found = await routerFor('').stop('canary rollback by pager');
      expect(found.map((r) => [r.name, r.weight])).toEqual([[ROUTE, 10]]);
      expect(await rules(path)).toEqual(SEEDED_RULES);
      await expect(router.setWeight(25)).rejects.toBeInstanceOf(StopRequestedError);
      await expect(router.prepare()).rejects.toBeInstanceOf(StopRequestedError);
      expect(await rules(path)).toEqual(SEEDED_RULES);
      expect((await router.inspect()).ours).toEqual([{ name: ROUTE, weight: 0, overrides: [], stoppedBy: 'canary rollback by pager', rolloutId: 'r1' }]);
      // A second stop finds nothing to write.
      const rv = (await gw.route())?.metadata?.resourceVersion;
      await routerFor('').stop('again');
      expect((await gw.route())?.metadata?.resourceVersion).toBe(rv);
    } finally {
      await gw.dispose();
    }
  });

  it('a route changed mid-rollout into a shape it refuses: raises are refused with the reason, 0% still restores it', async () => {
    const gw = await gatewayWorld(tier);
    try {
      const path = `${GROUP_PATH}/namespaces/${tier.world.namespace}/httproutes/${ROUTE}`;
      const router = routerFor('r2');
      await router.prepare();
      await router.setWeight(50);
      // Someone adds a URLRewrite to the split rule (a JSON Patch, keeping our backendRef).
      await tier.world.api.request('PATCH', path, [{ op: 'add', path: '/spec/rules/1/filters', value: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } }] }], 'application/json-patch+json');
      const err = await router.setWeight(100).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CanaryError);
      expect((err as Error).message).toContain(`HTTPRoute ${tier.world.namespace}/${ROUTE}: spec.rules[1].filters: a URLRewrite filter`);
      expect(await router.getWeight()).toBe(50);
      await router.setWeight(0);
      const after = (await rules(path)) as { backendRefs: unknown[]; filters?: unknown[] }[];
      expect(after[1]?.backendRefs).toEqual(SEEDED_RULES[1]?.backendRefs);
      expect(after[1]?.filters).toHaveLength(1);
      expect(await router.getWeight()).toBe(0);
    } finally {
      await gw.dispose();
    }
  });
});
