import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUCKETS, HISTORY_START_MS, INTERVALS, generateRollout, writeOpenMetrics, type GeneratedRollout } from '../../bench/judge/corpus/generate.js';
import { lognormalCdf } from '../../bench/judge/corpus/random.js';
import { MINUTE_MS, QUICK_SIZE, ROLLOUT_START_MS, SCRAPE_MS, buildCorpus, canaryShareAt, trueP95, type RolloutSpec } from '../../bench/judge/corpus/spec.js';
import { PRESETS_BY_NAME } from '../../src/analysis/presets.js';
import { startPrometheus, type PrometheusHandle } from '../support/prometheus-harness.js';

// The judge benchmark's corpus, served by a real Prometheus, gives back what it was generated
// with: the preset's own queries over a step (or the hour before the rollout) return each side's
// error rate and P95 within the tolerances below, the canary's share follows the steps, canary
// series are born at the rollout's start and a controller pod's counters reset. If the corpus
// drifted from what it claims to be, the benchmark's figures would mean nothing.

const corpus = buildCorpus(7, QUICK_SIZE);
function pick(kind: RolloutSpec['kind'], onset: string | null, rps: number, restartAtMin?: number): RolloutSpec {
  const spec = corpus.find((s) => s.kind === kind && s.band === 'high' && (s.onset?.label ?? null) === onset);
  if (!spec) throw new Error(`no ${kind} rollout with onset ${String(onset)} in the quick corpus`);
  return { ...spec, rps, ...(restartAtMin !== undefined && { restartMs: ROLLOUT_START_MS + restartAtMin * MINUTE_MS }) };
}
// Two restart a controller pod 110 s before a window below begins: the pod's last scrape before
// the restart is the last sample before the window, and its first after it lands inside the window.
const specs = [
  pick('equal', null, 60, 17 - 110 / 60),
  pick('error +5pt', '25% start', 40, 27 - 110 / 60),
  pick('latency 2x', '10% mid', 80),
  pick('slow stable (P95 > 2s)', null, 25),
];
const rollouts = specs.map(generateRollout);

let prometheus: PrometheusHandle;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'canary-judge-corpus-test-'));
  const file = join(workDir, 'corpus.om');
  await writeOpenMetrics(file, rollouts);
  prometheus = await startPrometheus({ openMetricsFile: file });
});

afterAll(async () => {
  await prometheus?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function scalar(query: string, atMs: number): Promise<number | null> {
  const url = `${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}&time=${atMs / 1000}`;
  const body = (await (await fetch(url)).json()) as { data: { result: { value: [number, string] }[] } };
  const value = body.data.result[0]?.value[1];
  return value === undefined ? null : Number(value);
}

async function vector(query: string, atMs: number, label: string): Promise<Map<string, number>> {
  const url = `${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}&time=${atMs / 1000}`;
  const body = (await (await fetch(url)).json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  return new Map(body.data.result.map((r) => [r.metric[label] ?? '', Number(r.value[1])]));
}

const preset = PRESETS_BY_NAME['ingress-nginx'];
function render(name: 'requests' | 'errors' | 'latency' | 'latencyBuckets', spec: RolloutSpec, side: 'stable' | 'canary', windowMs: number): string {
  return (preset.queries[name] ?? '')
    .replaceAll('{{selector}}', preset.selectors[side])
    .replaceAll('{{namespace}}', spec.id)
    .replaceAll('{{ingress}}', 'checkout')
    .replaceAll('{{window}}', `${windowMs / 1000}s`)
    .replaceAll('{{quantile}}', '0.95');
}

interface Window {
  side: 'stable' | 'canary';
  fromMs: number;
  toMs: number;
}

/** Each step (split at the onset), both sides; and stable's hour before the rollout. */
function windowsOf(spec: RolloutSpec): Window[] {
  const edges = [0, 15, 25, 40].map((m) => ROLLOUT_START_MS + m * MINUTE_MS);
  if (spec.onset && !edges.includes(spec.onset.ms)) edges.push(spec.onset.ms);
  edges.sort((a, b) => a - b);
  const out: Window[] = [{ side: 'stable', fromMs: ROLLOUT_START_MS - 60 * MINUTE_MS, toMs: ROLLOUT_START_MS }];
  // A scrape lands up to 30 s after the interval it reports, so a window starting right at a change
  // would hold an interval from before it; and increase() extrapolates a series born just before
  // the window differently per bucket. Each window starts two minutes after its change.
  for (let i = 1; i < edges.length; i++) {
    for (const side of ['stable', 'canary'] as const) out.push({ side, fromMs: (edges[i - 1] ?? 0) + 2 * MINUTE_MS, toMs: edges[i] ?? 0 });
  }
  return out;
}

/** What the generator emitted in the intervals whose scrapes fall in the window, pod by pod. */
function emitted(rollout: GeneratedRollout, w: Window): { requests: number; errors: number; intervals: number } {
  let requests = 0;
  let errors = 0;
  ([0, 1] as const).forEach((pod) => {
    const t = rollout.truth[w.side][pod];
    for (let k = 0; k < INTERVALS; k++) {
      const scrapedAt = HISTORY_START_MS + (k + 1) * SCRAPE_MS + rollout.spec.scrapeOffsetMs[pod];
      if (scrapedAt <= w.fromMs || scrapedAt > w.toMs) continue;
      requests += t.requests[k] ?? 0;
      errors += t.errors[k] ?? 0;
    }
  });
  return { requests, errors, intervals: (w.toMs - w.fromMs) / SCRAPE_MS };
}

const label = (w: Window) => `(${new Date(w.fromMs).toISOString().slice(11, 16)}, ${new Date(w.toMs).toISOString().slice(11, 16)}]`;

function regressed(spec: RolloutSpec, w: Window): boolean {
  return w.side === 'canary' && spec.onset !== null && w.fromMs > spec.onset.ms;
}

/** What histogram_quantile gives on the true distribution's bucket shares: the best a histogram can do. */
function bucketedP95(mu: number, sigma: number): number {
  const finite = BUCKETS.filter((b) => Number.isFinite(b));
  let lower = 0;
  let below = 0;
  for (const upper of finite) {
    const at = lognormalCdf(upper, mu, sigma);
    if (at >= 0.95) return lower + ((upper - lower) * (0.95 - below)) / (at - below);
    lower = upper;
    below = at;
  }
  return lower;
}

describe('the judge benchmark corpus, served by real Prometheus', () => {
  it.each(rollouts.map((r) => [r.spec.kind, r] as const))('%s: the error rate Prometheus returns is what was generated', async (_kind, rollout) => {
    const spec = rollout.spec;
    for (const w of windowsOf(spec)) {
      const span = w.toMs - w.fromMs;
      const requests = await scalar(render('requests', spec, w.side, span), w.toMs);
      const errors = await scalar(render('errors', spec, w.side, span), w.toMs);
      const truth = emitted(rollout, w);
      expect(requests, `${spec.id} ${w.side} requests`).not.toBeNull();
      const measured = (errors ?? 0) / (requests ?? 1);
      // Against the counts emitted: increase() extrapolates at the window's edges and misses a
      // new series' first sample, which moves the rate by far less than a tenth of a point here.
      expect(Math.abs(measured - truth.errors / truth.requests), `${spec.id} ${w.side} ${label(w)} vs emitted`).toBeLessThan(0.001 + 0.05 * (truth.errors / truth.requests));
      // Against the parameter: within four standard deviations of the Beta wander plus binomial noise.
      const model = w.side === 'stable' ? spec.stable : spec.canary;
      const p = Math.min(0.999, model.errorRate + (regressed(spec, w) ? spec.errorDelta : 0));
      const sd = Math.sqrt((p * (1 - p)) / (model.concentration + 1) / truth.intervals + (p * (1 - p)) / truth.requests);
      expect(Math.abs(measured - p), `${spec.id} ${w.side} ${label(w)} error rate ${measured} vs ${p}`).toBeLessThan(4 * sd + 0.001);
    }
  });

  it.each(rollouts.map((r) => [r.spec.kind, r] as const))('%s: the P95 Prometheus returns is what was generated', async (_kind, rollout) => {
    const spec = rollout.spec;
    for (const w of windowsOf(spec)) {
      const p95 = await scalar(render('latency', spec, w.side, w.toMs - w.fromMs), w.toMs);
      const model = w.side === 'stable' ? spec.stable : spec.canary;
      const factor = regressed(spec, w) ? spec.latencyFactor : 1;
      const expected = bucketedP95(model.mu + Math.log(factor), model.sigma);
      expect(p95, `${spec.id} ${w.side} P95`).not.toBeNull();
      expect(Math.abs((p95 ?? 0) / expected - 1), `${spec.id} ${w.side} ${label(w)} P95 ${p95} vs ${expected}`).toBeLessThan(0.1);
      // And every bucket holds the share of requests the lognormal puts below its bound, within
      // four standard deviations of the sampling noise (the wide buckets make the P95 itself a
      // coarse test: a 25% slower canary can stay within 10% of it).
      const buckets = await vector(render('latencyBuckets', spec, w.side, w.toMs - w.fromMs), w.toMs, 'le');
      const total = buckets.get('+Inf') ?? 0;
      expect(total, `${spec.id} ${w.side} +Inf bucket`).toBeGreaterThan(0);
      for (const bound of BUCKETS.filter((b) => Number.isFinite(b))) {
        const share = (buckets.get(String(bound)) ?? 0) / total;
        const cdf = lognormalCdf(bound, model.mu + Math.log(factor), model.sigma);
        const sd = Math.sqrt((cdf * (1 - cdf)) / total);
        expect(Math.abs(share - cdf), `${spec.id} ${w.side} ${label(w)} share ≤ ${bound}s: ${share} vs ${cdf}`).toBeLessThan(4 * sd + 0.004);
      }
      // And the histogram puts it in the bucket where the generated P95 really is.
      const truly = trueP95(model, factor);
      const bucket = (x: number) => BUCKETS.findIndex((b) => x <= b);
      expect(bucket(p95 ?? 0), `${spec.id} ${w.side} P95 bucket (true P95 ${truly})`).toBe(bucket(truly));
    }
  });

  it("the canary's share of requests follows the steps, from series born at the rollout's start", async () => {
    const spec = specs[0] as RolloutSpec;
    const canaryRequests = `sum(nginx_ingress_controller_requests{namespace="${spec.id}",canary!=""})`;
    expect(await scalar(canaryRequests, ROLLOUT_START_MS - SCRAPE_MS)).toBeNull();
    expect(await scalar(canaryRequests, ROLLOUT_START_MS + 2 * SCRAPE_MS)).toBeGreaterThan(0);
    for (const [fromMin, toMin] of [[1, 15], [15, 25], [25, 40]] as const) {
      const span = (toMin - fromMin) * MINUTE_MS;
      const at = ROLLOUT_START_MS + toMin * MINUTE_MS;
      const canary = (await scalar(render('requests', spec, 'canary', span), at)) ?? 0;
      const stable = (await scalar(render('requests', spec, 'stable', span), at)) ?? 0;
      expect(canary / (canary + stable)).toBeCloseTo(canaryShareAt(at - 1), 1);
    }
  });

  it('one controller pod restarts: its counters reset, and the other pod carries on', async () => {
    for (const spec of specs) {
      const resets = `sum by (controller_pod) (resets(nginx_ingress_controller_requests{namespace="${spec.id}",status="200",canary=""}[3h]))`;
      const url = `${prometheus.url}/api/v1/query?query=${encodeURIComponent(resets)}&time=${(ROLLOUT_START_MS + 80 * MINUTE_MS) / 1000}`;
      const body = (await (await fetch(url)).json()) as { data: { result: { value: [number, string] }[] } };
      expect(body.data.result.map((r) => Number(r.value[1])).sort(), spec.id).toEqual([0, 1]);
    }
  });
});
