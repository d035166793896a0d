// Failed scrapes against a real Prometheus (issue 15, class 3). Stale markers cannot be
// backfilled, so Prometheus scrapes an HTTP target of this test's own every second; the target
// fails its scrapes for a while, and the preset's window count is read at times all around the
// gap. A window must never count the whole counter: either it is counted (at most 1.5× the
// requests the target served in it) or it is not countable, and the check says why.
//
// Every wait gates on what Prometheus has recorded (samples, failed scrapes, the stale marker).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckContext } from '../../src/analysis/check-context.js';
import { PRESETS_BY_NAME } from '../../src/analysis/presets.js';
import { PrometheusClient } from '../../src/analysis/prometheus-client.js';
import { renderQuery } from '../../src/analysis/promql-template.js';
import { observeTraffic } from '../../src/analysis/traffic.js';
import { defaultPolicy } from '../support/policies.js';
import { startScrapingPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';
import { CHECKOUT_TARGET } from '../support/preset-queries.js';
import { until } from '../support/wait.js';

const RATE = 100; // requests a second the target serves
const BASE = 50_000; // the counter's value when the test starts: a whole counter is obvious
const WINDOW_S = 5;
const TARGET = CHECKOUT_TARGET;
const SERIES = 'nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary=""}';

let server: Server;
let prometheus: PrometheusHandle;
let client: PrometheusClient;
let failing = false;
const t0 = Date.now();
/** Requests the target has served by time t (ms): the truth the counter exposes. */
const served = (t: number) => BASE + Math.floor((RATE * (t - t0)) / 1000);

const scalarAt = async (promql: string, at = new Date()): Promise<number | undefined> => (await client.query(promql, at)).samples[0]?.value;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url !== '/metrics' || failing) {
      res.writeHead(500).end('failing on purpose');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(
      '# TYPE nginx_ingress_controller_requests counter\n' +
        `nginx_ingress_controller_requests{namespace="shop",ingress="checkout",service="checkout",canary="",status="200",controller_pod="ingress-nginx-a"} ${served(Date.now())}\n`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  prometheus = await startScrapingPrometheus({ targets: [`127.0.0.1:${port}`], scrapeInterval: '1s' });
  client = new PrometheusClient({ url: prometheus.url, timeoutMs: 10_000, retries: 0 });
}, 90_000);

afterAll(async () => {
  await prometheus?.stop();
  await new Promise((resolve) => server?.close(resolve));
});

describe('windows around failed scrapes (real Prometheus scraping a live target)', () => {
  it('never counts the whole counter: each window is counted within 1.5× the requests served, or named as uncountable', async () => {
    const render = (name: string) => renderQuery(PRESETS_BY_NAME['ingress-nginx'].queries[name] ?? '', TARGET, { side: 'stable', selector: 'canary=""', windowPromQL: `${WINDOW_S}s` });
    // Healthy scrapes first: enough real samples for a window before the gap.
    await until('8 real samples', async () => ((await scalarAt(`count_over_time(${SERIES}[30s])`)) ?? 0) >= 8 || undefined);

    failing = true;
    const gapFrom = Date.now();
    // Prometheus has recorded three failed scrapes and the stale marker (the series is gone now).
    await until('three failed scrapes', async () => {
      const failed = await scalarAt(`count_over_time(up[30s]) - sum_over_time(up[30s])`);
      return (failed ?? 0) >= 3 || undefined;
    });
    await until('the stale marker', async () => ((await client.query(SERIES, new Date())).samples.length === 0 ? true : undefined));

    failing = false;
    const gapTo = Date.now();
    // Scrapes are back, and a whole window after the gap has been recorded.
    await until('samples a window past the gap', async () => {
      const last = await scalarAt(`timestamp(${SERIES})`);
      return last !== undefined && last * 1000 >= gapTo + (WINDOW_S + 2) * 1000 ? true : undefined;
    });

    const uncountable: number[] = [];
    const counted: Array<{ at: number; count: number; truth: number }> = [];
    for (let at = gapFrom - 2000; at <= gapTo + (WINDOW_S + 1) * 1000; at += 250) {
      const value = (await client.query(render('requests'), new Date(at))).samples[0]?.value;
      if (value === undefined) continue;
      if (Number.isNaN(value)) {
        uncountable.push(at);
        // The gap is named: the gapped series are there to be counted.
        expect(await scalarAt(render('countingGaps'), new Date(at))).toBeGreaterThan(0);
      } else counted.push({ at, count: value, truth: served(at) - served(at - WINDOW_S * 1000) });
    }
    expect(uncountable.length).toBeGreaterThan(0);
    expect(counted.length).toBeGreaterThan(0);
    for (const c of counted) expect(c.count, `window ending ${new Date(c.at).toISOString()}`).toBeLessThanOrEqual(1.5 * c.truth);

    // A check at an uncountable window is inconclusive and says why, in words.
    const policy = defaultPolicy(`apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  interval: ${WINDOW_S}s\n  analysis:\n    window: ${WINDOW_S}s\n`);
    const ctx = new CheckContext(policy, TARGET, client, new Date(uncountable[0] as number), 25, 1);
    const traffic = await observeTraffic(ctx, 'stable');
    expect(traffic.requests).toBeNull();
    expect(traffic.problem).toMatch(/no sample at the start of the last 5s \(failed scrapes: Prometheus marked it stale\)/);
  }, 120_000);
});
