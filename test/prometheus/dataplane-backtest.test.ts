import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataPlaneModels, writeDataPlaneOpenMetrics, type DataPlaneScenario, type Flavour } from '../../scripts/dataplane-traffic.js';
import type { Outcome, RolloutRecord } from '../../src/rollout/record.js';
import { startPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';
import { runCli } from '../support/run-cli.js';

// `canary backtest` with a policy choosing the envoy-gateway or the traefik preset, against a real
// Prometheus holding each scenario in that data plane's own format: the default policy's rollout,
// judged from PromQL answers, ends as the scenario says (exit 0 promoted, exit 3 rolled back).

const models = dataPlaneModels();
let prometheus: PrometheusHandle;
let workDir: string;
const policyFile: Record<'envoy-gateway' | 'traefik', string> = { 'envoy-gateway': '', traefik: '' };

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'canary-dataplane-backtest-'));
  const file = join(workDir, 'dataplanes.om');
  await writeDataPlaneOpenMetrics(file, models.values());
  prometheus = await startPrometheus({ openMetricsFile: file });
  for (const preset of ['envoy-gateway', 'traefik'] as const) {
    // Everything else comes from policies/default.yaml, as for any user policy.
    policyFile[preset] = join(workDir, `${preset}.yaml`);
    writeFileSync(policyFile[preset], `apiVersion: canary/v1\nkind: RolloutPolicy\nmetadata:\n  name: ${preset}\nspec:\n  analysis:\n    preset: ${preset}\n`);
  }
});

afterAll(async () => {
  await prometheus?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function backtest(flavour: Flavour, scenario: DataPlaneScenario) {
  const start = models.get(`${flavour}/${scenario}`)?.timeline.start;
  if (!start) throw new Error(`no model ${flavour}/${scenario}`);
  const preset = flavour === 'envoy-gateway' ? 'envoy-gateway' : 'traefik';
  const run = await runCli([
    'backtest', 'checkout', '-n', 'shop', '-p', policyFile[preset], '--prometheus', prometheus.url, '--from', start.toISOString(), '-o', 'json',
  ]);
  const doc = JSON.parse(run.stdout) as { outcome: Outcome; record: RolloutRecord };
  return { ...run, ...doc };
}

describe.each(['envoy-gateway', 'traefik-ingress-nginx', 'traefik-gateway'] as const)('canary backtest with the %s data', (flavour) => {
  it('promotes the healthy canary after all 40 checks', async () => {
    const { code, outcome, record, stderr } = await backtest(flavour, 'healthy');
    expect(code, stderr).toBe(0);
    expect(outcome.result).toBe('promoted');
    expect(record.checks).toHaveLength(40);
    expect(record.checks.every((c) => c.verdict === 'pass' || c.verdict === 'pending')).toBe(true);
    expect(record.checks.at(-1)?.verdict).toBe('pass');
    // The latency judges saw seconds: the canary's P95 at 100% is the healthy profile's, not 1000× it.
    const latency = record.checks.at(-1)?.results.find((r) => r.metric === 'p95-latency');
    expect(latency?.canary).toBeGreaterThan(0.1);
    expect(latency?.canary).toBeLessThan(0.3);
  });

  it('rolls back the error regression at the first check after the rise in the 25% step', async () => {
    const { code, record, outcome } = await backtest(flavour, 'error-regression');
    expect(code).toBe(3);
    expect(record.checks.at(-1)).toMatchObject({ index: 21, weight: 25, verdict: 'fail' });
    expect(record.checks.at(-1)?.results.find((r) => r.metric === 'error-rate')?.reason).toMatch(/^canary errors 1\d\.\d% vs stable 0\.\d+% over the last check/);
    expect(outcome.traffic).toBe('canary at 0%, all traffic on stable');
  });

  it('rolls back the latency regression at 10%', async () => {
    const { code, record, outcome } = await backtest(flavour, 'latency-regression');
    expect(code).toBe(3);
    expect(record.checks.at(-1)).toMatchObject({ index: 1, weight: 10, verdict: 'fail' });
    expect(outcome.reason).toMatch(
      /^p95-latency: canary P95 above 1\.5× stable's over the first check of the rollout .*: \d+\.\d% of canary requests slower than \d+ ms \(1\.5× stable's P95\)/,
    );
    // In the data plane's units made seconds: stable's P95 is the healthy profile's (ms as shown).
    const latency = record.checks.at(-1)?.results.find((r) => r.metric === 'p95-latency');
    expect(latency?.stable).toBeGreaterThan(0.1);
    expect(latency?.stable).toBeLessThan(0.3);
  });
});

it('ends at once with exit 2, naming the preset, when neither side has data (a mistyped target)', async () => {
  const start = models.get('envoy-gateway/healthy')?.timeline.start.toISOString() ?? '';
  const run = await runCli(['backtest', 'checkuot', '-n', 'shop', '-p', policyFile['envoy-gateway'], '--prometheus', prometheus.url, '--from', start, '-o', 'json']);
  expect(run.code).toBe(2);
  const { outcome } = JSON.parse(run.stdout) as { outcome: Outcome };
  expect(outcome.reason).toContain('that Prometheus scrapes what the envoy-gateway preset reads');
  expect(outcome.reason).toContain('query: sum(');
  expect(outcome.reason).toContain('envoy_cluster_upstream_rq_xx{envoy_cluster_name=~"service/shop/checkuot/');
});
