import { afterEach, beforeEach, expect, it } from 'vitest';
import type { DoctorReport } from '../../src/doctor/doctor.js';
import { gatewayWorld, GROUP_PATH, ROUTE, routeAccepted, type GatewayWorld } from '../support/real-kube/gateway.js';
import { realKubeDescribe } from '../support/real-kube/tier.js';
import { TARGET } from '../support/real-kube/world.js';

// `canary doctor` for a target on the Gateway API router, against the real API server with the
// upstream CRDs and the test playing the Gateway controller. Only the router's findings are
// asserted here (the scripted Prometheus answers rollout queries, not doctor's).

realKubeDescribe('canary doctor with the Gateway API router on a real API server', (tier) => {
  let gw: GatewayWorld | undefined;
  beforeEach(async () => {
    gw = await gatewayWorld(tier);
    const g = gw;
    await tier.world.until('the test Gateway controller to accept the route', () => routeAccepted(tier.world, g));
  }, 180_000);
  afterEach(async () => {
    await gw?.dispose();
    gw = undefined;
  });

  const doctor = async (policy: string): Promise<DoctorReport> => {
    const run = await tier.world.run(['doctor', TARGET, '-n', tier.world.namespace, '-p', policy, '-o', 'json']);
    return JSON.parse(run.stdout) as DoctorReport;
  };
  const find = (r: DoctorReport, check: string) => r.findings.find((f) => f.area === 'router' && f.check === check);

  it('checks the HTTPRoute (not Ingresses): its shape and its acceptance by the Gateway, then a change the controller has not seen', async () => {
    const g = gw as GatewayWorld;
    const report = await doctor(g.policy);
    expect(report.router).toBe('gateway-api');
    expect(find(report, 'route-shape')?.verdict).toBe('ok');
    expect(find(report, 'route-accepted')).toMatchObject({ verdict: 'ok', detail: expect.stringContaining('Gateway public accepted HTTPRoute') });
    expect(report.findings.find((f) => f.area === 'objects')?.detail).toContain(`HTTPRoute ${ROUTE}`);
    expect(report.findings.some((f) => f.check === 'other-canaries' || f.check === 'ingresses')).toBe(false);
    expect(report.migration).toBeUndefined();

    // The Gateway controller stops, the route changes: its acceptance is now of an older generation.
    await g.controller.stop();
    const path = `${GROUP_PATH}/namespaces/${tier.world.namespace}/httproutes/${ROUTE}`;
    const before = (await tier.world.api.find(path))?.metadata?.generation ?? 0;
    await tier.world.api.mergePatch(path, { spec: { hostnames: ['shop.example.com', 'www.shop.example.com'] } });
    await tier.world.until('the route to have a new generation', async () => ((await tier.world.api.find(path))?.metadata?.generation ?? 0) > before);
    const stale = await doctor(g.policy);
    expect(find(stale, 'route-accepted')).toMatchObject({ verdict: 'warn', detail: expect.stringContaining('has not caught up') });
  });
});
