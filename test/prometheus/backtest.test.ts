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
    // The error rate is proven healthy. The recording's latency profile puts 12% of requests in the
    // 100-250 ms bucket that holds the 1.5x line (220 ms) and is not log-normal around it, so the
    // latency judge says the histogram cannot decide rather than guess; the step advances anyway.
    const last = record.checks.at(-1);
    expect(last?.results.find((r) => r.metric === 'error-rate')?.verdict).toBe('pass');
    const latency = last?.results.find((r) => r.metric === 'p95-latency');
    if (latency?.verdict !== 'pass') expect(latency?.reason).toMatch(/the histogram cannot decide: 220 ms lies inside the histogram's 100 ms–250 ms bucket/);
  });

  it('rolls back the error regression at the first check after the rise in the 25% step', async () => {
    const { code, record, outcome } = await backtest('error-regression');
    expect(code).toBe(3);
    const last = record.checks.at(-1);
    // The rise starts 5 minutes into the 25% step (minute 20); the next check is minute 21.
    expect(last).toMatchObject({ index: 21, weight: 25, verdict: 'fail' });
    expect(last?.results.find((r) => r.metric === 'error-rate')?.reason).toMatch(/^canary errors 1\d\.\d% vs stable 0\.\d+% over the last check/);
    expect(outcome.traffic).toBe('canary at 0%, all traffic on stable');
    // Nothing was verified: a backtest has no stable Deployment to look at, and says so.
    expect(record.rollback?.stableVerified).toBeUndefined();
    expect(record.rollback?.stableMessage).toBe('not verified (backtest)');
  });

  it('rolls back the latency regression at 10%', async () => {
    const { code, record, outcome } = await backtest('latency-regression');
    expect(code).toBe(3);
    expect(record.checks.at(-1)).toMatchObject({ index: 1, weight: 10, verdict: 'fail' });
    expect(outcome.reason).toMatch(/p95-latency: canary P95 above 1\.5× stable's over the first check of the rollout .*: \d+\.\d% of canary requests slower than \d+ ms \(1\.5× stable's P95\), more than 5\.0% \(canary P95 \d+ ms this step vs stable's \d+ ms\), with 99\.5% confidence/);
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

  // No data at all is a query looking in the wrong place, not a dead canary: exit 2 at once.
  for (const [what, args] of [
    ['a mistyped target', ['backtest', 'checkuot', '-n', 'shop']],
    ['a forgotten -n', ['backtest', 'checkout', '-n', 'default']],
  ] as const) {
    it(`ends at once with exit 2 naming the query, the namespace and the time for ${what}`, async () => {
      const start = models.get('healthy')?.timeline.start.toISOString() ?? '';
      const run = await runCli([...args, '--prometheus', prometheus.url, '--from', start, '-o', 'json']);
      expect(run.code).toBe(2);
      const { outcome, record } = JSON.parse(run.stdout) as { outcome: Outcome; record: RolloutRecord };
      expect(record.checks).toHaveLength(0);
      expect(outcome.reason).toContain(`in namespace ${args[3]} at `);
      expect(outcome.reason).toContain('query: sum(');
      expect(outcome.reason).not.toContain('inconclusive');
    });
  }

  it('ends at once with exit 2 for a --from in the future', async () => {
    const run = await runCli(['backtest', 'checkout', '-n', 'shop', '--prometheus', prometheus.url, '--from', '2099-01-01T00:00:00Z', '-o', 'json']);
    expect(run.code).toBe(2);
    expect(run.stdout + run.stderr).toContain('Prometheus has no request data for ingress checkout in namespace shop at 2099-01-01T00:01:00.000Z');
  });
});
