import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOpenMetrics } from '../../scripts/openmetrics.js';
import { scenarioModels, type ScenarioName } from '../../scripts/traffic-model.js';
import type { Outcome, RolloutRecord } from '../../src/rollout/record.js';
import { startPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';
import { runCli } from '../support/run-cli.js';

// `canary backtest` against a real Prometheus holding each scenario's history: the rollout the
// default policy would have run, judged from PromQL answers, ends as the scenario says.

const models = scenarioModels({ dayOffset: true });
let prometheus: PrometheusHandle;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'canary-backtest-'));
  const file = join(workDir, 'scenarios.om');
  await writeOpenMetrics(file, [...models.values()]);
  prometheus = await startPrometheus({ openMetricsFile: file });
});

afterAll(async () => {
  await prometheus?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function backtest(name: ScenarioName, extra: string[] = []) {
  const start = models.get(name)?.timeline.start;
  if (!start) throw new Error(`no model ${name}`);
  const run = await runCli([
    'backtest', 'checkout', '-n', 'shop', '--prometheus', prometheus.url, '--from', start.toISOString(), '-o', 'json', ...extra,
  ]);
  const doc = JSON.parse(run.stdout) as { outcome: Outcome; record: RolloutRecord };
  return { ...run, ...doc };
}

describe('canary backtest against real Prometheus history', () => {
  it('promotes the healthy canary after all 40 checks', async () => {
    const { code, outcome, record } = await backtest('healthy');
    expect(code).toBe(0);
    expect(outcome.result).toBe('promoted');
    expect(record.checks).toHaveLength(40);
    // The sequential judges may still be gathering evidence early on; nothing fails or lacks data.
    expect(record.checks.every((c) => c.verdict === 'pass' || c.verdict === 'pending')).toBe(true);
    expect(record.checks.at(-1)?.verdict).toBe('pass');
  });

  it('rolls back the error regression at the first check after the rise in the 25% step', async () => {
    const { code, record, outcome } = await backtest('error-regression');
    expect(code).toBe(3);
    const last = record.checks.at(-1);
    // The rise starts 5 minutes into the 25% step (minute 20); the next check is minute 21.
    expect(last).toMatchObject({ index: 21, weight: 25, verdict: 'fail' });
    expect(last?.results.find((r) => r.metric === 'error-rate')?.canary).toBeGreaterThan(0.1);
    expect(outcome.traffic).toBe('canary at 0%, all traffic on stable');
  });

  it('rolls back the latency regression at 10%', async () => {
    const { code, record, outcome } = await backtest('latency-regression');
    expect(code).toBe(3);
    expect(record.checks.at(-1)).toMatchObject({ index: 1, weight: 10, verdict: 'fail' });
    expect(outcome.reason).toMatch(/p95-latency: canary requests slower than 250 ms: \d+\.\d% vs stable 0\.\d+% .*more than 1\.5× stable's, with 99\.5% confidence \(P95 4\d\d ms vs 19\d ms/);
  });

  it('never passes a canary without traffic: inconclusive until the policy limit, then rolled back', async () => {
    const { code, record, outcome } = await backtest('no-traffic');
    expect(code).toBe(3);
    expect(record.checks.map((c) => c.verdict)).toEqual(['inconclusive', 'inconclusive', 'inconclusive', 'inconclusive', 'inconclusive']);
    expect(outcome.reason).toContain('5 checks in a row were inconclusive');
  });

  it('--record writes a recording that replays to the same outcome without Prometheus', async () => {
    const file = join(workDir, 'latency.json');
    await backtest('latency-regression', ['--record', file]);
    const recording = JSON.parse(readFileSync(file, 'utf8')) as { meta: { target: string; startedAt: string }; entries: unknown[] };
    expect(recording.meta).toMatchObject({ target: 'checkout', startedAt: models.get('latency-regression')?.timeline.start.toISOString() });
    const replay = await runCli(['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run', '--replay', file, '-o', 'json']);
    expect(replay.code).toBe(3);
    expect((JSON.parse(replay.stdout) as { record: RolloutRecord }).record.checks).toHaveLength(1);
  });
});
