import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRESETS_BY_NAME } from '../../src/analysis/presets.js';
import { PrometheusClient } from '../../src/analysis/prometheus-client.js';
import { renderQuery, type Side } from '../../src/analysis/promql-template.js';
import type { InstantSample } from '../../src/analysis/types.js';
import type { PresetName } from '../../src/policy/schema.js';
import {
  DATAPLANE_SCENARIOS,
  boundsSeconds,
  dataPlaneModels,
  nominalP95,
  writeDataPlaneOpenMetrics,
  type DataPlaneModel,
  type DataPlaneScenario,
  type Flavour,
} from '../../scripts/dataplane-traffic.js';
import { errorRiseAt, histogramQuantile, phaseAt, REGRESSED_ERROR_RATE, TARGET } from '../../scripts/traffic-model.js';
import { startPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';

// The envoy-gateway and traefik presets against a real Prometheus (Debian's 2.42) holding traffic
// in each data plane's own format (scripts/dataplane-traffic.ts): the counts and the P95 the judges
// get are the ones the model emitted, per side, with the other Services' and namespaces' traffic
// (failing at 30%) left out.

const models = dataPlaneModels();
let prometheus: PrometheusHandle;
let client: PrometheusClient;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'canary-dataplanes-'));
  const file = join(workDir, 'dataplanes.om');
  await writeDataPlaneOpenMetrics(file, models.values());
  prometheus = await startPrometheus({ openMetricsFile: file });
  client = new PrometheusClient({ url: prometheus.url, timeoutMs: 10_000, retries: 0 });
});

afterAll(async () => {
  await prometheus?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const PRESET_OF: Record<Flavour, PresetName> = {
  'envoy-gateway': 'envoy-gateway',
  'traefik-ingress-nginx': 'traefik',
  'traefik-gateway': 'traefik',
};

function model(flavour: Flavour, scenario: DataPlaneScenario): DataPlaneModel {
  const m = models.get(`${flavour}/${scenario}`);
  if (!m) throw new Error(`no model ${flavour}/${scenario}`);
  return m;
}

async function samples(flavour: Flavour, query: string, side: Side, at: Date): Promise<InstantSample[]> {
  const preset = PRESETS_BY_NAME[PRESET_OF[flavour]];
  const template = preset.queries[query];
  if (!template) throw new Error(`preset ${PRESET_OF[flavour]} has no "${query}" query`);
  const promql = renderQuery(template, TARGET, { side, windowPromQL: '1m', quantile: 0.95, selector: preset.selectors[side] });
  return (await client.query(promql, at)).samples;
}

async function single(flavour: Flavour, query: string, side: Side, at: Date): Promise<number> {
  const result = await samples(flavour, query, side, at);
  expect(result, `${query} for ${side} at ${at.toISOString()}`).toHaveLength(1);
  return result[0]!.value;
}

/** The bucket (lower, upper] a latency falls in, in seconds: the precision a histogram P95 has. */
function bucketOf(flavour: Flavour, seconds: number): [number, number] {
  const bounds = boundsSeconds(flavour);
  const i = bounds.findIndex((b) => seconds <= b);
  return [i <= 0 ? 0 : bounds[i - 1]!, bounds[i]!];
}

function checkTimes(m: DataPlaneModel): { label: string; at: Date }[] {
  return m.timeline.phases
    .filter((p) => p.weight < 100)
    .flatMap((p, i) => {
      const minutes = (p.to.getTime() - p.from.getTime()) / 60_000;
      return [1, Math.floor(minutes / 2), minutes].map((min) => ({ label: `${p.weight}% +${min}m`, at: phaseAt(m.timeline, i, min) }));
    });
}

const FLAVOURS = ['envoy-gateway', 'traefik-ingress-nginx', 'traefik-gateway'] as const;

describe.each(FLAVOURS.flatMap((f) => DATAPLANE_SCENARIOS.map((s) => [f, s] as const)))('%s preset data, %s', (flavour, scenario) => {
  const m = model(flavour, scenario);
  it.each(checkTimes(m))('gives the emitted canary and stable counts and P95 at $label', async ({ at }) => {
    for (const side of ['canary', 'stable'] as const) {
      const known = m.window(side, at);
      const requests = await single(flavour, 'requests', side, at);
      const errors = await single(flavour, 'errors', side, at);
      expect(requests).toBe(known.requests);
      expect(errors).toBe(known.errors);
      // The scenario's configured rate, allowing for whole requests in a one-minute window.
      expect(Math.abs(errors - m.errorRate(side, at) * requests)).toBeLessThanOrEqual(4);

      // In seconds, whatever unit the data plane's histogram uses.
      const p95 = await single(flavour, 'latency', side, at);
      expect(p95).toBeCloseTo(known.p95, 9);
      expect(bucketOf(flavour, p95)).toEqual(bucketOf(flavour, nominalP95(flavour, m.slow(side))));

      // The sequential judge's buckets, once its preset's unit is applied, give the same P95.
      const perSecond = PRESETS_BY_NAME[PRESET_OF[flavour]].latencyBucketsPerSecond ?? 1;
      const buckets = (await samples(flavour, 'latencyBuckets', side, at))
        .map((s) => ({ le: s.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels['le']) / perSecond, count: s.value }))
        .sort((a, b) => a.le - b.le);
      expect(buckets.map((b) => b.le)).toEqual(boundsSeconds(flavour));
      expect(buckets.at(-1)?.count).toBe(known.requests);
      expect(histogramQuantile(0.95, buckets.map((b) => b.count), boundsSeconds(flavour))).toBeCloseTo(known.p95, 9);
    }
  });
});

describe.each(FLAVOURS)('%s preset, what the judges see', (flavour) => {
  it('sees the error regression at the first check after the rise, not before', async () => {
    const m = model(flavour, 'error-regression');
    const rise = errorRiseAt(m.timeline);
    const rate = async (at: Date) => (await single(flavour, 'errors', 'canary', at)) / (await single(flavour, 'requests', 'canary', at));
    expect(await rate(rise)).toBeLessThan(0.02);
    expect(await rate(new Date(rise.getTime() + 60_000))).toBeCloseTo(REGRESSED_ERROR_RATE, 1);
  });

  it('shows the latency regression as canary P95 over twice stable in the first step', async () => {
    const m = model(flavour, 'latency-regression');
    const at = phaseAt(m.timeline, 0, 1);
    expect((await single(flavour, 'latency', 'canary', at)) / (await single(flavour, 'latency', 'stable', at))).toBeGreaterThan(2);
  });

  it('answers no canary requests and 0 errors before the canary has any series', async () => {
    const m = model(flavour, 'healthy');
    const before = new Date(m.timeline.start.getTime() - 60_000);
    expect(await samples(flavour, 'requests', 'canary', before)).toEqual([]);
    expect(await single(flavour, 'errors', 'canary', before)).toBe(0);
    expect(await single(flavour, 'requests', 'stable', before)).toBe(m.window('stable', before).requests);
  });
});

describe('envoy-gateway preset, Envoy specifics', () => {
  it('counts final responses, not upstream_rq_total (which also counts retried attempts)', async () => {
    const m = model('envoy-gateway', 'healthy');
    const at = phaseAt(m.timeline, 1, 5);
    const attempts = await client.query(
      `sum(increase(envoy_cluster_upstream_rq_total{envoy_cluster_name="service/shop/checkout/80/http"}[1m]))`,
      at,
    );
    expect(await single('envoy-gateway', 'requests', 'stable', at)).toBe(m.window('stable', at).requests);
    expect(attempts.samples[0]!.value).toBeGreaterThan(m.window('stable', at).requests);
  });
});
