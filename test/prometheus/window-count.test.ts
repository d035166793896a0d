import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRESETS_BY_NAME } from '../../src/analysis/presets.js';
import { PrometheusClient } from '../../src/analysis/prometheus-client.js';
import { renderQuery, type Side } from '../../src/analysis/promql-template.js';
import { startPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';
import { CHECKOUT_TARGET } from '../support/preset-queries.js';

// The canary's series are born during the rollout (its `canary` label value is new), and
// increase() never counts a series' first sample. Against a real Prometheus: the preset's window
// count starts a series born in the window from zero, and partitions a series' requests exactly
// between consecutive windows.

const T0 = Date.parse('2025-03-03T10:00:00Z');
const TARGET = CHECKOUT_TARGET;
const labels = (canary: string, status: string) =>
  `namespace="shop",ingress="checkout",service="checkout",canary="${canary}",status="${status}",controller_pod="ingress-nginx-a"`;

let prometheus: PrometheusHandle;
let client: PrometheusClient;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'canary-window-count-'));
  const lines = ['# HELP nginx_ingress_controller_requests requests', '# TYPE nginx_ingress_controller_requests unknown'];
  // Stable: 400 requests a minute (4 of them 5xx) from 09:50, scraped every 15 s.
  for (let t = T0 - 600_000; t <= T0 + 600_000; t += 15_000) {
    const n = (t - (T0 - 600_000)) / 15_000;
    lines.push(`nginx_ingress_controller_requests{${labels('', '200')}} ${1000 + 99 * n} ${t / 1000}`);
    lines.push(`nginx_ingress_controller_requests{${labels('', '503')}} ${10 + n} ${t / 1000}`);
  }
  // Canary: born at 10:05:05 with 15 requests already counted (2 of them 5xx), 89 by 10:05:50,
  // then 15 more every 15 s (1 of them a 5xx every other scrape).
  const canary = [15, 40, 60, 89];
  const canaryErrors = [2, 5, 7, 9];
  for (let i = 0; i < 12; i++) {
    const t = T0 + 305_000 + i * 15_000;
    const total = i < 4 ? (canary[i] as number) : 89 + 15 * (i - 3);
    const errors = i < 4 ? (canaryErrors[i] as number) : 9 + Math.floor((i - 3) / 2);
    lines.push(`nginx_ingress_controller_requests{${labels('checkout-canary', '200')}} ${total - errors} ${t / 1000}`);
    lines.push(`nginx_ingress_controller_requests{${labels('checkout-canary', '503')}} ${errors} ${t / 1000}`);
  }
  // Another namespace: a controller pod counts 75 stable requests by 10:04:45, restarts, and its
  // counter starts again from zero: 40 at 10:05:15, then 30 more every 15 s. Its last sample before
  // the 10:05–10:06 window is from before the restart, and by 10:06 it has climbed past it.
  const restarting = `namespace="restart",ingress="checkout",service="checkout",canary="",status="200",controller_pod="ingress-nginx-b"`;
  const beforeRestart = [30, 45, 60, 75];
  beforeRestart.forEach((v, i) => lines.push(`nginx_ingress_controller_requests{${restarting}} ${v} ${(T0 + 240_000 + i * 15_000) / 1000}`));
  for (let i = 0; i < 8; i++) lines.push(`nginx_ingress_controller_requests{${restarting}} ${40 + 30 * i} ${(T0 + 315_000 + i * 15_000) / 1000}`);
  lines.push('# EOF', '');
  const file = join(workDir, 'born.om');
  writeFileSync(file, lines.join('\n'));
  prometheus = await startPrometheus({ openMetricsFile: file });
  client = new PrometheusClient({ url: prometheus.url, timeoutMs: 10_000, retries: 0 });
});

afterAll(async () => {
  await prometheus?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const preset = PRESETS_BY_NAME['ingress-nginx'];

async function count(query: 'requests' | 'errors', side: Side, at: number, target = TARGET): Promise<number> {
  const promql = renderQuery(preset.queries[query] ?? '', target, { side, windowPromQL: '1m', selector: preset.selectors[side] });
  const result = await client.query(promql, new Date(at));
  expect(result.samples, promql).toHaveLength(1);
  return result.samples[0]?.value ?? Number.NaN;
}

describe('counting a window from Prometheus counters (real Prometheus)', () => {
  it('counts all 89 requests and 9 errors of a canary series born in the window, not the 74 increase() sees', async () => {
    expect(await count('requests', 'canary', T0 + 360_000)).toBe(89);
    expect(await count('errors', 'canary', T0 + 360_000)).toBe(9);
    const plain = await client.query(
      `sum(increase(nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary!=""}[1m]))`,
      new Date(T0 + 360_000),
    );
    expect(plain.samples[0]?.value).not.toBe(89);
  });

  it('counts the next window exactly from the last sample before it: 60 requests and 2 errors', async () => {
    expect(await count('requests', 'canary', T0 + 420_000)).toBe(60);
    expect(await count('errors', 'canary', T0 + 420_000)).toBe(2);
  });

  it('counts stable, whose series existed before the window, exactly: 400 requests and 4 errors a minute', async () => {
    expect(await count('requests', 'stable', T0 + 360_000)).toBe(400);
    expect(await count('errors', 'stable', T0 + 360_000)).toBe(4);
  });

  it("counts a window whose last sample before it predates a controller pod's restart from the counter's restart: 130, not 130 - 75", async () => {
    const target = { ...TARGET, namespace: 'restart' };
    expect(await count('requests', 'stable', T0 + 360_000, target)).toBe(130);
    expect(await count('requests', 'stable', T0 + 420_000, target)).toBe(120);
  });
});
