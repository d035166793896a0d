import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { freePort } from '../../scripts/free-port.js';
import { writeOpenMetrics } from '../../scripts/openmetrics.js';
import { rolloutTimeline, TrafficModel } from '../../scripts/traffic-model.js';
import { shippedPath } from '../../src/paths.js';
import { startPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';
import { pushgatewayUnavailable, startPushgateway, type PushgatewayHandle } from '../support/pushgateway-harness.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { TARGET } from '../support/real-kube/world.js';

// examples/grafana/canary.json against real parts: every PromQL expression in it (panels,
// annotations, and the template variables' label_values) is run, with the template variables
// filled in, against a real Prometheus (Debian's) that holds backfilled ingress-nginx traffic of
// a rollout of checkout in the world's namespace up to a few minutes ago, and that scrapes a real
// Pushgateway (Debian's prometheus-pushgateway) to which two real rollouts on the real API server
// pushed: one promoted (with a commit time), one rolled back by analysis. Each must return at
// least one number. The test waits on what Prometheus has scraped, never on time.

const MINUTE = 60_000;
const DASHBOARD = shippedPath('examples/grafana/canary.json');

interface Found {
  where: string;
  expr: string;
}

/** Every `expr` in the dashboard, and each template variable's query. */
function expressions(node: unknown, where: string, out: Found[] = []): Found[] {
  if (Array.isArray(node)) node.forEach((n, i) => expressions(n, `${where}[${i}]`, out));
  else if (node && typeof node === 'object') {
    const obj = node as Record<string, unknown>;
    const label = typeof obj['title'] === 'string' ? `${where} "${obj['title']}"` : typeof obj['name'] === 'string' ? `${where} "${obj['name']}"` : where;
    for (const [key, value] of Object.entries(obj)) {
      if (key === 'expr' && typeof value === 'string') out.push({ where: label, expr: value });
      else if (key === 'query' && typeof value === 'object' && value && typeof (value as { query?: unknown }).query === 'string') {
        out.push({ where: label, expr: (value as { query: string }).query });
      } else expressions(value, `${label}.${key}`, out);
    }
  }
  return out;
}

/** Grafana's substitutions; label_values(M, L) becomes the PromQL that asks the same. */
function substitute(expr: string, vars: { target: string; namespace: string }): string {
  const filled = expr.replaceAll('$__rate_interval', '1m').replaceAll('$target', vars.target).replaceAll('$namespace', vars.namespace);
  const lv = filled.match(/^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/);
  return lv ? `count by (${lv[2]}) (${lv[1]})` : filled;
}

async function rangeQuery(prom: PrometheusHandle, expr: string, start: number, end: number): Promise<number[]> {
  const form = new URLSearchParams({ query: expr, start: String(start / 1000), end: String(end / 1000), step: '15' });
  const res = await fetch(`${prom.url}/api/v1/query_range`, { method: 'POST', body: form });
  const body = (await res.json()) as { status: string; error?: string; data?: { result: { values: [number, string][] }[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? res.status}`);
  return (body.data?.result ?? []).flatMap((s) => s.values.map(([, v]) => Number(v))).filter((v) => Number.isFinite(v));
}

async function instant(prom: PrometheusHandle, expr: string): Promise<number> {
  const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { data?: { result: unknown[] } };
  return body.data?.result.length ?? 0;
}

// Without a Pushgateway a developer's run skips (saying why); CI=true fails instead, like the tier.
const noPushgateway = process.env['CI'] ? undefined : pushgatewayUnavailable();

realKubeDescribe('the Grafana dashboard on a real Prometheus and Pushgateway', (tier) => {
  it.skipIf(Boolean(noPushgateway))(`every query in examples/grafana/canary.json returns data${noPushgateway ? ` (SKIPPED: ${noPushgateway})` : ''}`, async () => {
    const { world } = tier;
    const ns = world.namespace;
    const dir = await mkdtemp(join(tmpdir(), 'canary-dashboard-'));
    let pushgateway: PushgatewayHandle | undefined;
    let prom: PrometheusHandle | undefined;
    try {
      pushgateway = await startPushgateway();
      // A whole ingress-nginx rollout of checkout (the shipped policy's steps), ending 5 minutes
      // ago, moved into the world's namespace.
      const now = Date.now();
      const start = new Date(Math.floor((now - 50 * MINUTE) / 15_000) * 15_000);
      const file = join(dir, 'rollout.om');
      await writeOpenMetrics(file, [new TrafficModel('healthy', { timeline: rolloutTimeline({ start, promotedMinutes: 5 }) })]);
      await writeFile(file, (await readFile(file, 'utf8')).replaceAll('namespace="shop"', `namespace="${ns}"`));
      const config = [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'scrape_configs:',
        '  - job_name: pushgateway',
        '    honor_labels: true',
        `    static_configs: [{ targets: ["${pushgateway.address}"] }]`,
        '',
      ].join('\n');
      prom = await startPrometheus({ openMetricsFile: file, config });
      const p = prom;
      const scraped = (expr: string) => async () => (await instant(p, expr)) > 0;

      const base = await world.writePolicy('metrics', {});
      const policy = join(dir, 'metrics.yaml');
      await writeFile(policy, `${await readFile(base, 'utf8')}  metrics:\n    environment: production\n    pushgateway:\n      url: ${pushgateway.url}\n`);

      const promoted = await world.deploy([], { policy, env: { CANARY_COMMIT_TIME: new Date(now - 90 * MINUTE).toISOString() } }).done;
      expectExit(promoted, 0);
      // Every push reached the Pushgateway: a failed push is a warning on stderr.
      expect(promoted.stderr).toBe('');
      await world.until(
        'Prometheus to have scraped the promoted rollout (counters, rolled-back still at 0, lead time)',
        async () =>
          (await scraped(`deployments_total{namespace="${ns}",outcome="promoted"} == 1`)()) &&
          (await scraped(`deployments_total{namespace="${ns}",outcome="rolled-back"} == 0`)()) &&
          (await scraped(`deployment_lead_time_seconds{namespace="${ns}"}`)()),
      );

      world.setMetrics({ kind: 'canary-errors' });
      const rolledBack = await world.deploy(['--image', 'registry.example.com/shop/checkout:3.0.0'], { policy }).done;
      expectExit(rolledBack, 3);
      await world.until(
        'Prometheus to have scraped the rolled-back rollout (failure counter, time to restore)',
        async () =>
          (await scraped(`deployment_failures_total{namespace="${ns}",outcome="rolled-back"} == 1`)()) &&
          (await scraped(`incident_recovery_time_minutes{namespace="${ns}"}`)()) &&
          (await scraped(`canary_rollout_phase{namespace="${ns}",phase="rolled-back"} == 1`)()),
      );

      const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as unknown;
      const found = expressions(dashboard, 'dashboard');
      const exprs = found.map((f) => f.expr);
      // 11 panel queries, 1 annotation, 2 template variables (when the dashboard grows, so does this).
      expect(found.length).toBeGreaterThanOrEqual(14);
      // The issue's deployment-frequency query, verbatim, and the four sides of the dashboard.
      expect(exprs).toContain('sum(increase(deployments_total{environment="production"}[30d])) / 30');
      expect(exprs.some((e) => e.includes('canary!=""') && e.includes('nginx_ingress_controller_requests'))).toBe(true);
      expect(exprs.some((e) => e.includes('canary=""') && e.includes('nginx_ingress_controller_request_duration_seconds_bucket'))).toBe(true);
      expect(exprs.some((e) => e.includes('canary_rollout_weight'))).toBe(true);
      expect(found.some((f) => f.where.includes('annotations'))).toBe(true);
      for (const e of ['deployment_failures_total', 'deployment_lead_time_seconds', 'incident_recovery_time_minutes']) expect(exprs.some((x) => x.includes(e))).toBe(true);

      const end = Date.now();
      const empty: string[] = [];
      for (const f of found) {
        const expr = substitute(f.expr, { target: 'checkout', namespace: ns });
        const values = await rangeQuery(p, expr, end - 60 * MINUTE, end);
        if (values.length === 0) empty.push(`${f.where}: ${expr}`);
      }
      expect(empty).toEqual([]);
    } finally {
      await prom?.stop();
      await pushgateway?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 240_000);

  it('a Pushgateway that is down changes nothing but one warning line: promoted, exit 0; a bad --commit-time is refused first', async () => {
    const { world } = tier;
    const dir = await mkdtemp(join(tmpdir(), 'canary-pushdown-'));
    try {
      const base = await world.writePolicy('metrics-down', {});
      const policy = join(dir, 'metrics.yaml');
      await writeFile(policy, `${await readFile(base, 'utf8')}  metrics:\n    pushgateway:\n      url: http://127.0.0.1:${await freePort()}\n      deadline: 2s\n`);

      const bad = await world.run(['deploy', TARGET, '-n', world.namespace, '--image', 'registry.example.com/shop/checkout:2.0.0', '--commit-time', 'yesterday'], { policy });
      expectExit(bad, 2);
      expect(bad.stderr).toContain('--commit-time: expected');
      expect(await world.record()).toBeUndefined();

      const run = await world.deploy([], { policy }).done;
      expectExit(run, 0);
      expect(run.stdout).toContain('PROMOTED');
      expect(await world.record()).toMatchObject({ phase: 'promoted', weight: 0 });
      const warnings = run.stderr.split('\n').filter((l) => l.includes('metrics not pushed to the Pushgateway (the rollout goes on)'));
      expect(warnings).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
