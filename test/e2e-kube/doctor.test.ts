import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { DoctorReport } from '../../src/doctor/doctor.js';
import { ownershipLabels } from '../../src/k8s/labels.js';
import { writeOpenMetrics } from '../../scripts/openmetrics.js';
import { stableTraffic } from '../support/doctor-traffic.js';
import { startPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import type { World } from '../support/real-kube/world.js';

// `canary doctor` through the CLI against the real API server, each ingress-nginx pitfall built in
// the cluster as a user would have it, and a real Prometheus holding the namespace's stable
// traffic up to now (doctor asks about now, as a rollout would).

const NGINX = 'nginx.ingress.kubernetes.io/';
const FINE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 1, 2, 2.5, 5, 10];

async function prometheusFor(namespace: string): Promise<{ prom: PrometheusHandle; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-doctor-'));
  const to = Math.floor(Date.now() / 15_000) * 15;
  const file = join(dir, 'stable.om');
  await writeOpenMetrics(file, [stableTraffic({ namespace, from: to - 1200, to, scrapeSeconds: 15, buckets: FINE_BUCKETS })]);
  const prom = await startPrometheus({ openMetricsFile: file });
  return { prom, done: async () => { await prom.stop(); await rm(dir, { recursive: true, force: true }); } };
}

async function doctor(world: World, extra: { kubeconfig?: string } = {}): Promise<{ code: number | null; report: DoctorReport; stdout: string; text: string }> {
  const { prom, done } = await prometheusFor(world.namespace);
  try {
    const policy = await world.writePolicy('doctor', { interval: '1m', steps: [{ weight: 10, duration: '5m' }] });
    const env = extra.kubeconfig ? { KUBECONFIG: extra.kubeconfig } : {};
    const args = ['doctor', 'checkout', '-n', world.namespace, '-p', policy, '--prometheus', prom.url];
    const json = await world.run([...args, '-o', 'json'], { env });
    const text = await world.run(args, { env });
    expect(text.code).toBe(json.code);
    return { code: json.code, report: JSON.parse(json.stdout) as DoctorReport, stdout: json.stdout, text: text.stdout };
  } finally {
    await done();
  }
}

const verdicts = (report: DoctorReport) => Object.fromEntries(report.findings.map((f) => [`${f.area}/${f.check}`, f.verdict]));

async function ingress(world: World, name: string, o: { service: string; host?: string; path?: string; annotations?: Record<string, string>; labels?: Record<string, string> }): Promise<void> {
  await world.api.post(`/apis/networking.k8s.io/v1/namespaces/${world.namespace}/ingresses`, {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: world.namespace, ...(o.labels && { labels: o.labels }), ...(o.annotations && { annotations: o.annotations }) },
    spec: { ingressClassName: 'nginx', rules: [{ host: o.host ?? 'shop.example.com', http: { paths: [{ path: o.path ?? '/', pathType: 'Prefix', backend: { service: { name: o.service, port: { number: 80 } } } }] } }] },
  });
}

realKubeDescribe('canary doctor on a real API server', (tier) => {
  it('says a rollout can work (exit 0) on a clean target, writes nothing, and prints the HTTPRoute for a move to Gateway API', async () => {
    const w = tier.world;
    const stableVersion = (await w.api.find(`/apis/networking.k8s.io/v1/namespaces/${w.namespace}/ingresses/checkout`))?.metadata?.resourceVersion;
    const { code, report, text } = await doctor(tier.world);
    expect(code, JSON.stringify(report.findings, null, 2)).toBe(0);
    expect(report.canWork).toBe(true);
    expect(report.findings.filter((f) => f.verdict === 'fail')).toEqual([]);
    expect(verdicts(report)).toMatchObject({ 'objects/exists': 'ok', 'access/rbac': 'ok', 'router/canary-ingress': 'ok', 'prometheus/query:requests': 'ok', 'prometheus/scrape-interval': 'ok', 'prometheus/clock': 'ok', 'prometheus/buckets:p95-latency': 'ok' });
    expect(text).toContain('kind: HTTPRoute');
    expect(text).toMatch(/backendRefs:\n\s+- name: checkout\n\s+port: 80\n/);
    // Read-only: no canary Ingress, record or Lease made, the stable Ingress untouched.
    expect(await w.api.find(`/apis/networking.k8s.io/v1/namespaces/${w.namespace}/ingresses/checkout-canary`)).toBeUndefined();
    expect(await w.record()).toBeUndefined();
    expect(await w.lease()).toBeUndefined();
    expect((await w.api.find(`/apis/networking.k8s.io/v1/namespaces/${w.namespace}/ingresses/checkout`))?.metadata?.resourceVersion).toBe(stableVersion);
  });

  it('finds our canary Ingress off the main path, a rival canary on the same host and path, and the canary Service as another Ingress\'s backend (exit 2)', async () => {
    const w = tier.world;
    await ingress(w, 'checkout-canary', { service: 'checkout-canary', path: '/shop', labels: ownershipLabels('checkout'), annotations: { [`${NGINX}canary`]: 'true', [`${NGINX}canary-weight`]: '0' } });
    await ingress(w, 'checkout-experiment', { service: 'checkout', annotations: { [`${NGINX}canary`]: 'true', [`${NGINX}canary-weight`]: '5' } });
    await ingress(w, 'checkout-preview', { service: 'checkout-canary', host: 'preview.example.com' });
    const { code, report } = await doctor(w);
    expect(code).toBe(2);
    expect(report.canWork).toBe(false);
    const failed = report.findings.filter((f) => f.verdict === 'fail');
    expect(failed.map((f) => f.check).sort()).toEqual(['canary-ingress', 'canary-service-primary', 'other-canaries']);
    expect(failed.find((f) => f.check === 'other-canaries')?.detail).toContain('checkout-experiment (weight 5)');
    expect(failed.find((f) => f.check === 'canary-service-primary')?.detail).toContain('primary backend of checkout-preview');
  });

  it('names every permission a user bound to nothing lacks, and says the Ingresses could not be read (exit 2)', async () => {
    const { code, report } = await doctor(tier.world, { kubeconfig: tier.cluster.kubeconfigs.nobody });
    expectExit({ code, stdout: JSON.stringify(report), stderr: '' }, 2);
    const access = report.findings.filter((f) => f.area === 'access' && f.verdict === 'fail').map((f) => f.detail);
    expect(access).toContain(`cannot patch ingresses.networking.k8s.io in namespace ${tier.world.namespace}`);
    expect(access).toContain(`cannot create leases.coordination.k8s.io in namespace ${tier.world.namespace}`);
    expect(verdicts(report)['router/ingresses']).toBe('fail');
  });

  it('names a missing canary Service and where to rename it (exit 2)', async () => {
    await tier.world.api.delete(`/api/v1/namespaces/${tier.world.namespace}/services/checkout-canary`);
    const { code, report } = await doctor(tier.world);
    expect(code).toBe(2);
    expect(report.findings.find((f) => f.area === 'objects' && f.verdict === 'fail')?.detail).toContain('Service ' + tier.world.namespace + '/checkout-canary not found');
  });
});
