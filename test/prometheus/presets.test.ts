import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRESETS_BY_NAME } from '../../src/analysis/presets.js';
import { PrometheusClient } from '../../src/analysis/prometheus-client.js';
import { renderQuery, type Side } from '../../src/analysis/promql-template.js';
import type { InstantSample } from '../../src/analysis/types.js';
import { writeOpenMetrics } from '../../scripts/openmetrics.js';
import {
  bucketOf,
  errorRiseAt,
  phaseAt,
  REGRESSED_ERROR_RATE,
  scenarioModels,
  TARGET,
  type ScenarioName,
  type TrafficModel,
} from '../../scripts/traffic-model.js';
import { startPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';

// The shipped ingress-nginx preset against a real Prometheus (Debian's 2.42) holding known
// traffic: every scenario on its own day, one backfill and one Prometheus for the whole file.

const preset = PRESETS_BY_NAME['ingress-nginx'];
const models = scenarioModels({ dayOffset: true });
let prometheus: PrometheusHandle;
let client: PrometheusClient;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'canary-presets-'));
  const file = join(workDir, 'scenarios.om');
  await writeOpenMetrics(file, [...models.values()]);
  prometheus = await startPrometheus({ openMetricsFile: file });
  client = new PrometheusClient({ url: prometheus.url, timeoutMs: 10_000, retries: 0 });
});

afterAll(async () => {
  await prometheus?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function model(name: ScenarioName): TrafficModel {
  const m = models.get(name);
  if (!m) throw new Error(`no model for ${name}`);
  return m;
}

function promql(query: string, side: Side): string {
  const template = preset.queries[query];
  if (!template) throw new Error(`the ingress-nginx preset has no "${query}" query`);
  return renderQuery(template, TARGET, { side, windowPromQL: '1m', quantile: 0.95, selector: preset.selectors[side] });
}

async function samples(query: string, side: Side, at: Date): Promise<InstantSample[]> {
  return (await client.query(promql(query, side), at)).samples;
}

async function single(query: string, side: Side, at: Date): Promise<number> {
  const result = await samples(query, side, at);
  expect(result, `${query} for ${side} at ${at.toISOString()}`).toHaveLength(1);
  return result[0]!.value;
}

/** Check times inside each step: a minute in (window wholly in the step), the middle, the last check. */
function checkTimes(m: TrafficModel): { label: string; at: Date }[] {
  return m.timeline.phases
    .filter((p) => p.weight < 100)
    .flatMap((p, i) => {
      const minutes = (p.to.getTime() - p.from.getTime()) / 60_000;
      return [1, Math.floor(minutes / 2), minutes].map((min) => ({ label: `${p.weight}% +${min}m`, at: phaseAt(m.timeline, i, min) }));
    });
}

async function expectSideMatchesModel(m: TrafficModel, side: Side, at: Date): Promise<void> {
  const known = m.window(side, at);
  if (!known) throw new Error(`the model has no ${side} traffic at ${at.toISOString()}`);
  const requests = await single('requests', side, at);
  const errors = await single('errors', side, at);
  expect(requests).toBeCloseTo(known.requests, 6);
  expect(errors).toBeCloseTo(known.errors, 6);
  expect(errors / requests).toBeCloseTo(known.errorRate, 9);
  // The scenario's configured rate, allowing for whole requests in a one-minute window.
  expect(Math.abs(errors - m.nominal(side, at).errorRate * requests)).toBeLessThanOrEqual(4);

  const p95 = await single('latency', side, at);
  expect(p95).toBeCloseTo(known.p95, 9);
  const nominal = m.nominal(side, at).p95;
  expect(bucketOf(p95)).toEqual(bucketOf(nominal));
}

describe.each(['healthy', 'error-regression', 'latency-regression'] as const)('ingress-nginx preset, %s', (name) => {
  const m = model(name);
  it.each(checkTimes(m))('gives the known canary and stable error rate and P95 at $label', async ({ at }) => {
    await expectSideMatchesModel(m, 'canary', at);
    await expectSideMatchesModel(m, 'stable', at);
  });
});

describe('ingress-nginx preset, what the judges see', () => {
  it('counts both controller pods and only this Ingress in this namespace (noise there fails at 30%)', async () => {
    const m = model('healthy');
    const at = phaseAt(m.timeline, 1, 5);
    const stableRate = (await single('errors', 'stable', at)) / (await single('requests', 'stable', at));
    expect(stableRate).toBeLessThan(0.02);
    // 25% of ~40 req/s over a minute, from two controller pods: far more than one pod's half.
    expect(await single('requests', 'canary', at)).toBeGreaterThan(450);
  });

  it('sees the error regression at the first check after the rise, not before', async () => {
    const m = model('error-regression');
    const rise = errorRiseAt(m.timeline);
    const before = await single('errors', 'canary', rise) / (await single('requests', 'canary', rise));
    const afterAt = new Date(rise.getTime() + 60_000);
    const after = (await single('errors', 'canary', afterAt)) / (await single('requests', 'canary', afterAt));
    expect(before).toBeLessThan(0.02);
    expect(after).toBeGreaterThan(0.05);
    expect(after).toBeCloseTo(REGRESSED_ERROR_RATE, 1);
  });

  it('shows the latency regression as canary P95 well over 1.5 × stable in the first step', async () => {
    const m = model('latency-regression');
    const at = phaseAt(m.timeline, 0, 1);
    const canary = await single('latency', 'canary', at);
    const stable = await single('latency', 'stable', at);
    expect(canary / stable).toBeGreaterThan(2);
    expect(stable).toBeLessThan(0.25);
  });

  it('answers 0 errors, not an empty result, when the canary has no 5xx series at all', async () => {
    const healthy = model('healthy');
    const beforeStart = new Date(healthy.timeline.start.getTime() - 60_000);
    expect(await samples('requests', 'canary', beforeStart)).toEqual([]);
    expect(await single('errors', 'canary', beforeStart)).toBe(0);

    const idle = model('no-traffic');
    const at = phaseAt(idle.timeline, 0, 5);
    expect(await single('errors', 'canary', at)).toBe(0);
  });

  it('finds no canary requests when the canary serves none, while stable carries all traffic', async () => {
    const m = model('no-traffic');
    for (const at of [phaseAt(m.timeline, 0, 1), phaseAt(m.timeline, 1, 5), phaseAt(m.timeline, 2, 15)]) {
      const canary = await samples('requests', 'canary', at);
      expect(canary.every((s) => s.value === 0)).toBe(true);
      expect(await single('requests', 'stable', at)).toBeCloseTo(m.window('stable', at)!.requests, 6);
      // No histogram series for the canary: no P95 at all (empty or NaN), never a number.
      expect((await samples('latency', 'canary', at)).every((s) => Number.isNaN(s.value))).toBe(true);
    }
  });
});

describe('resource queries', () => {
  it.each(['canary', 'stable'] as const)('report the %s pod alone, without the pause container or the pod cgroup', async (side) => {
    const m = model('healthy');
    for (const at of [phaseAt(m.timeline, 0, 2), phaseAt(m.timeline, 2, 7)]) {
      const known = m.resources(side, at)!;
      const other = m.resources(side === 'canary' ? 'stable' : 'canary', at)!;
      const memory = await single('memory', side, at);
      expect(memory).toBe(known.memoryBytes);
      expect(memory).not.toBe(other.memoryBytes);
      const cpu = await single('cpu', side, at);
      expect(cpu).toBeCloseTo(known.cpuCores, 9);
      expect(cpu).not.toBeCloseTo(other.cpuCores, 3);
    }
  });
});
