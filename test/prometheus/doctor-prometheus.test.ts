import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrometheusClient } from '../../src/analysis/prometheus-client.js';
import type { Finding } from '../../src/doctor/finding.js';
import { prometheusFindings } from '../../src/doctor/prometheus-checks.js';
import type { Policy } from '../../src/policy/policy.js';
import { writeOpenMetrics } from '../../scripts/openmetrics.js';
import { stableTraffic } from '../support/doctor-traffic.js';
import { defaultPolicy } from '../support/policies.js';
import { startPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';

// doctor's Prometheus checks against a real Prometheus holding stable traffic in ingress-nginx's
// exact series, one namespace per situation, all over the same hour of history.

const FROM = Date.UTC(2026, 0, 15, 9, 0, 0) / 1000;
const TO = FROM + 3600;
const AT = new Date((TO - 300) * 1000);
const WITH_2S_BUCKET = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10];
// Fine enough around 1.5 × a 0.195 s P95 (0.29 s) to resolve the ratio's line.
const FINE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 1, 2, 2.5, 5, 10];

let prometheus: PrometheusHandle;
let client: PrometheusClient;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'canary-doctor-prom-'));
  const file = join(dir, 'doctor.om');
  await writeOpenMetrics(file, [
    stableTraffic({ namespace: 'healthy', from: FROM, to: TO, scrapeSeconds: 15, buckets: FINE_BUCKETS }),
    stableTraffic({ namespace: 'coarse', from: FROM, to: TO, scrapeSeconds: 15, latencySeconds: 0.9 }),
    stableTraffic({ namespace: 'classes', from: FROM, to: TO, scrapeSeconds: 15, statusClasses: true, buckets: WITH_2S_BUCKET }),
    stableTraffic({ namespace: 'sparse', from: FROM, to: TO, scrapeSeconds: 60, buckets: WITH_2S_BUCKET }),
  ]);
  prometheus = await startPrometheus({ openMetricsFile: file });
  client = new PrometheusClient({ url: prometheus.url, timeoutMs: 10_000, retries: 0 });
}, 120_000);

afterAll(async () => {
  client?.close();
  await prometheus?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function findings(namespace: string, policy: Policy = defaultPolicy(), serverTime?: () => Promise<number>): Promise<Finding[]> {
  return prometheusFindings({
    ...(serverTime && { serverTime }),
    policy,
    target: { namespace, ingress: 'checkout', stableService: 'checkout', canaryService: 'checkout-canary', stableDeployment: 'checkout', canaryDeployment: 'checkout-canary' },
    source: client,
    at: AT,
    displayUrl: client.displayUrl,
  });
}

const byCheck = (list: Finding[], check: string): Finding => {
  const found = list.find((f) => f.check === check);
  if (!found) throw new Error(`no ${check} finding in ${JSON.stringify(list, null, 2)}`);
  return found;
};

describe('canary doctor: Prometheus', () => {
  it('finds nothing wrong with stable traffic scraped every 15 s, codes in status and a 2 s bucket', async () => {
    const list = await findings('healthy');
    // memory and cpu are advisory: their missing container series only warn.
    const notOk = list.filter((f) => f.verdict !== 'ok');
    expect(notOk.map((f) => `${f.verdict} ${f.check}`)).toEqual(['warn query:memory', 'warn query:cpu']);
    expect(byCheck(list, 'query:requests').verdict).toBe('ok');
    expect(byCheck(list, 'scrape-interval').detail).toBe('about 4 samples per 1m window');
    expect(byCheck(list, 'buckets:p95-latency').detail).toContain('bucket boundary');
    expect(byCheck(list, 'buckets:p95-latency:ratio').detail).toContain('between le=250ms and le=300ms');
  });

  it('fails every query of the policy when Prometheus holds nothing for the target', async () => {
    const list = await findings('nowhere');
    for (const name of ['requests', 'latencyBuckets']) {
      const f = byCheck(list, `query:${name}`);
      expect(f.verdict).toBe('fail');
      expect(f.detail).toContain(`the ${name} query returns nothing for stable`);
    }
  });

  it('fails a window that holds one sample (scraped every 60 s against a 1 m window), naming the scrape interval to set', async () => {
    const f = byCheck(await findings('sparse'), 'scrape-interval');
    expect(f.verdict).toBe('fail');
    expect(f.detail).toContain('about 1 sample of nginx_ingress_controller_requests per 1m window');
    expect(f.fix).toContain('scrape_interval ≤ 30s');
  });

  it('says the 2 s cap between the 1 s and 2.5 s buckets cannot be judged exactly, and names the bucket to add', async () => {
    const list = await findings('coarse');
    const cap = byCheck(list, 'buckets:p95-latency');
    expect(cap.verdict).toBe('warn');
    expect(cap.detail).toContain('between le=1s and le=2.5s');
    expect(cap.fix).toContain('le=2');
    // 1.5 × a P95 inside the (0.5, 1] bucket is inside the (1, 2.5] bucket too.
    const ratio = byCheck(list, 'buckets:p95-latency:ratio');
    expect(ratio.verdict).toBe('warn');
    expect(ratio.detail).toMatch(/1\.5× stable's P95 of [\d.]+ms now/);
  });

  it('accepts status classes for the preset (5.. matches 5xx) and fails a policy query on exact codes', async () => {
    expect(byCheck(await findings('classes'), 'status-labels')).toMatchObject({ verdict: 'ok', detail: expect.stringContaining('holds classes like 5xx') });
    const exact = defaultPolicy(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  analysis:
    queries:
      errors: 'sum(nginx_ingress_controller_requests{namespace="{{namespace}}",ingress="{{ingress}}",{{selector}},status="503"}) or vector(0)'
`);
    const f = byCheck(await findings('classes', exact), 'status-labels');
    expect(f.verdict).toBe('fail');
    expect(f.detail).toContain('errors query matches exact codes');
    expect(byCheck(await findings('healthy', exact), 'status-labels').verdict).toBe('ok');
  });

  it("fails a clock 2 minutes ahead of Prometheus's (the deploy would refuse it too), and passes one that agrees", async () => {
    const ahead = byCheck(await findings('healthy', defaultPolicy(), async () => Date.now() - 120_000), 'clock');
    expect(ahead.verdict).toBe('fail');
    expect(ahead.detail).toContain("this machine's clock is 2m ahead of Prometheus's");
    expect(byCheck(await findings('healthy', defaultPolicy(), async () => Date.now()), 'clock').verdict).toBe('ok');
  });
});
