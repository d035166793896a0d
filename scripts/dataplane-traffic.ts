import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Policy } from '../src/policy/policy.js';
import { loadPolicy } from '../src/policy/loader.js';
import type { Side } from '../src/analysis/promql-template.js';
import { escapeOpenMetricsLabel } from './openmetrics.js';
import {
  BASE_ERROR_RATE,
  REGRESSED_ERROR_RATE,
  ROLLOUT_START,
  SCRAPE_INTERVAL_SECONDS,
  TARGET,
  TOTAL_REQUESTS_PER_SECOND,
  errorRiseAt,
  histogramQuantile,
  rolloutTimeline,
  scheduledWeightAt,
  seededRandom,
  type Timeline,
} from './traffic-model.js';

// Synthetic traffic for checkout in shop as Envoy Gateway's Envoy and Traefik expose it to
// Prometheus, for the envoy-gateway and traefik presets' real-Prometheus tests. Same rollout and
// scenarios as traffic-model.ts (the default policy's steps, ~40 req/s, 0.5% errors, the canary's
// errors rising to 12% five minutes into the second step, or its latency ~2.4× stable's from the
// start), written in each data plane's own metric names, labels, units and bucket layouts (sources
// in docs/presets.md). Deterministic; a ledger keeps what was emitted per side, so tests compare
// Prometheus's answers with exact values.

export const DATAPLANE_SCENARIOS = ['healthy', 'error-regression', 'latency-regression'] as const;
export type DataPlaneScenario = (typeof DATAPLANE_SCENARIOS)[number];

/** Which data plane, and for Traefik which provider names the services. */
export type Flavour = 'envoy-gateway' | 'traefik-ingress-nginx' | 'traefik-gateway';

const SCRAPE_MS = SCRAPE_INTERVAL_SECONDS * 1000;

/** Envoy's default histogram buckets (source/common/stats/histogram_impl.cc), in milliseconds. */
export const ENVOY_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000] as const;
/** Traefik's default Prometheus buckets (pkg/observability/types/metrics.go), in seconds. */
export const TRAEFIK_BUCKETS_SECONDS = [0.1, 0.3, 1.2, 5] as const;

interface Plane {
  /** Finite bucket bounds in seconds (what the judges see). */
  bucketsSeconds: readonly number[];
  /** How `le` is written: Envoy in milliseconds, Traefik in seconds. */
  le(boundSeconds: number): string;
  /** Cumulative share of requests at or under each finite bound. */
  fast: readonly number[];
  slow: readonly number[];
}

// Both profiles keep P95 well inside one bucket, so whole requests in a one-minute window cannot
// move it to the next bucket. Envoy: FAST P95 = 100 + 150 × (0.95 − 0.9) / 0.09 ≈ 183 ms, SLOW
// P95 = 250 + 250 × (0.95 − 0.8) / 0.19 ≈ 447 ms. Traefik: FAST P95 = 0.1 + 0.2 × 0.15 / 0.19 ≈
// 0.258 s, SLOW P95 = 0.3 + 0.9 × 0.25 / 0.295 ≈ 1.06 s.
const ENVOY: Plane = {
  bucketsSeconds: ENVOY_BUCKETS_MS.map((ms) => ms / 1000),
  // Envoy prints bounds with "{:.32g}" (test/integration/integration_admin_test.cc): 0.5, 1, 3600000.
  le: (s) => String(Math.round(s * 1000 * 1000) / 1000),
  fast: [0, 0.01, 0.1, 0.3, 0.6, 0.8, 0.9, 0.99, 0.999, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  slow: [0, 0, 0.02, 0.05, 0.2, 0.4, 0.6, 0.8, 0.99, 0.998, 1, 1, 1, 1, 1, 1, 1, 1, 1],
};
const TRAEFIK: Plane = {
  bucketsSeconds: TRAEFIK_BUCKETS_SECONDS,
  le: (s) => String(s),
  fast: [0.8, 0.99, 0.999, 1],
  slow: [0.2, 0.7, 0.995, 1],
};

function planeOf(flavour: Flavour): Plane {
  return flavour === 'envoy-gateway' ? ENVOY : TRAEFIK;
}

/** Bounds (seconds) including +Inf, for histogramQuantile. */
export function boundsSeconds(flavour: Flavour): number[] {
  return [...planeOf(flavour).bucketsSeconds, Number.POSITIVE_INFINITY];
}

/** The P95 a profile implies, in seconds. */
export function nominalP95(flavour: Flavour, slow: boolean): number {
  const plane = planeOf(flavour);
  return histogramQuantile(0.95, [...(slow ? plane.slow : plane.fast), 1], boundsSeconds(flavour));
}

// ---------------------------------------------------------------------------------------------
// Who is who in each data plane's labels

type StreamKey = Side | 'other-service' | 'other-namespace';

/** The value that names a stream's backend: Envoy's cluster, Traefik's qualified service. */
export function backendName(flavour: Flavour, key: StreamKey): string {
  const ns = key === 'other-namespace' ? 'staging' : TARGET.namespace;
  const service = key === 'canary' ? TARGET.canaryService : key === 'other-service' ? 'cart' : TARGET.stableService;
  switch (flavour) {
    case 'envoy-gateway':
      // EnvoyProxy mergeBackends: one cluster per Service, service/<ns>/<name>/<port>/<protocol>.
      return `service/${ns}/${service}/80/http`;
    case 'traefik-ingress-nginx': {
      // <ns>-<ingress>-<service>-<port>; the canary Ingress's backend is the main one's + "-canary".
      const ingress = key === 'other-service' ? 'cart' : TARGET.ingress;
      const primary = `${ns}-${ingress}-${key === 'other-service' ? 'cart' : TARGET.stableService}-80`;
      return `${key === 'canary' ? `${primary}-canary` : primary}@kubernetesingressnginx`;
    }
    case 'traefik-gateway': {
      // httproute-<ns>-<route>-gw-<gw ns>-<gw>-ep-<entrypoint>-<rule>-svc-<ns>-<service>-<backendRef index>
      const route = key === 'other-service' ? 'cart' : TARGET.ingress;
      return `httproute-${ns}-${route}-gw-traefik-traefik-ep-web-0-svc-${ns}-${service}-${key === 'canary' ? 1 : 0}@kubernetesgateway`;
    }
  }
}

const PROXY_PODS: Record<'envoy' | 'traefik', readonly string[]> = {
  envoy: ['envoy-shop-gateway-7c9d8b6f5-2xkq7', 'envoy-shop-gateway-7c9d8b6f5-9wmzt'],
  traefik: ['traefik-6f8b9c7d4-h5n2k', 'traefik-6f8b9c7d4-r8p4x'],
};

// Requests by route and outcome, as in traffic-model.ts: a 404 on the cart is a client error and
// never an error; 500 and 503 both are.
interface Category {
  method: string;
  code: string;
  isError: boolean;
  share(errorRate: number): number;
}
const CLIENT_ERROR_RATE = 0.01;
const CATEGORIES: readonly Category[] = [
  { method: 'GET', code: '200', isError: false, share: (e) => 0.6 * (1 - e - CLIENT_ERROR_RATE) },
  { method: 'GET', code: '404', isError: false, share: () => 0.6 * CLIENT_ERROR_RATE },
  { method: 'GET', code: '503', isError: true, share: (e) => 0.6 * e },
  { method: 'POST', code: '201', isError: false, share: (e) => 0.4 * (1 - e) },
  { method: 'POST', code: '500', isError: true, share: (e) => 0.4 * e },
];
const POD_SHARES = [0.5, 0.5] as const;
const NOISE_REQUESTS_PER_SECOND = 4;
const NOISE_ERROR_RATE = 0.3;
/** Envoy's upstream_rq_total also counts retried attempts: 1% more than final responses here. */
const RETRY_ATTEMPTS = 0.01;

/** Splits whole requests in proportion, carrying remainders so long-run shares are exact. */
class Carry {
  private readonly carry: number[];
  constructor(size: number) {
    this.carry = new Array<number>(size).fill(0);
  }
  split(n: number, fractions: readonly number[]): number[] {
    const raw = fractions.map((f, i) => n * f + (this.carry[i] ?? 0));
    const out = raw.map((r) => Math.max(0, Math.floor(r)));
    let left = n - out.reduce((a, b) => a + b, 0);
    const order = raw.map((_, i) => i).sort((a, b) => raw[b]! - out[b]! - (raw[a]! - out[a]!));
    for (let k = 0; left > 0; k = (k + 1) % out.length, left--) out[order[k]!]! += 1;
    raw.forEach((r, i) => (this.carry[i] = r - out[i]!));
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// The model

export interface Line {
  family: string;
  text: string;
}

interface LedgerRow {
  active: boolean;
  requests: number;
  errors: number;
  /** Cumulative bucket counts summed over series, +Inf last. */
  buckets: number[];
}

export interface DataPlaneWindow {
  requests: number;
  errors: number;
  errorRate: number;
  /** histogram_quantile(0.95) over the window's bucket increments, in seconds. */
  p95: number;
}

export class DataPlaneModel {
  readonly timeline: Timeline;
  private ledgerCache?: Map<Side, LedgerRow[]>;

  constructor(
    readonly flavour: Flavour,
    readonly scenario: DataPlaneScenario,
    options: { start?: Date; policy?: Policy } = {},
  ) {
    this.timeline = rolloutTimeline({ start: options.start ?? ROLLOUT_START, ...(options.policy && { policy: options.policy }) });
  }

  errorRate(side: Side, at: Date): number {
    return this.scenario === 'error-regression' && side === 'canary' && at.getTime() > errorRiseAt(this.timeline).getTime()
      ? REGRESSED_ERROR_RATE
      : BASE_ERROR_RATE;
  }

  slow(side: Side): boolean {
    return this.scenario === 'latency-regression' && side === 'canary';
  }

  /** What the preset should find for one side over the window ending at `at` (series must predate it). */
  window(side: Side, at: Date, windowSeconds = 60): DataPlaneWindow {
    const rows = this.ledger().get(side) ?? [];
    const i = (at.getTime() - this.timeline.historyStart.getTime()) / SCRAPE_MS;
    const end = rows[i];
    const begin = rows[i - (windowSeconds * 1000) / SCRAPE_MS];
    if (!Number.isInteger(i) || !end?.active || !begin?.active) {
      throw new Error(`data-plane model: no whole ${windowSeconds}s window of ${side} traffic ends at ${at.toISOString()}`);
    }
    const requests = end.requests - begin.requests;
    const errors = end.errors - begin.errors;
    const buckets = end.buckets.map((c, b) => c - (begin.buckets[b] ?? 0));
    return { requests, errors, errorRate: errors / requests, p95: histogramQuantile(0.95, buckets, boundsSeconds(this.flavour)) };
  }

  private ledger(): Map<Side, LedgerRow[]> {
    if (!this.ledgerCache) {
      const ledger = new Map<Side, LedgerRow[]>([['canary', []], ['stable', []]]);
      for (const step of this.simulate()) for (const side of ['canary', 'stable'] as const) ledger.get(side)!.push(step.rows[side]);
      this.ledgerCache = ledger;
    }
    return this.ledgerCache;
  }

  /** Every line of every scrape, in time order. */
  *lines(): Generator<Line> {
    for (const step of this.simulate()) yield* step.lines;
  }

  private *simulate(): Generator<{ lines: Line[]; rows: Record<Side, LedgerRow> }> {
    const plane = planeOf(this.flavour);
    const random = seededRandom(hash(`${this.flavour}/${this.scenario}`));
    const keys: StreamKey[] = ['stable', 'canary', 'other-service', 'other-namespace'];
    const pods = this.flavour === 'envoy-gateway' ? PROXY_PODS.envoy : PROXY_PODS.traefik;
    // Per stream, per pod, per category: the running count.
    const counts = new Map<StreamKey, number[][]>(keys.map((k) => [k, pods.map(() => CATEGORIES.map(() => 0))]));
    const carries = new Map<StreamKey, Carry>(keys.map((k) => [k, new Carry(pods.length * CATEGORIES.length)]));
    const sideSplit = new Carry(2);
    const noiseSplit = new Carry(1);
    const start = this.timeline.start.getTime();

    for (let t = this.timeline.historyStart.getTime(); t <= this.timeline.end.getTime(); t += SCRAPE_MS) {
      const at = new Date(t);
      const first = t === this.timeline.historyStart.getTime();
      const jitter = 0.9 + 0.2 * random();
      const total = first ? 0 : Math.round(TOTAL_REQUESTS_PER_SECOND * SCRAPE_INTERVAL_SECONDS * jitter);
      const weight = scheduledWeightAt(this.timeline, at);
      const [toCanary = 0, toStable = 0] = sideSplit.split(total, [weight / 100, 1 - weight / 100]);
      const [noise = 0] = noiseSplit.split(first ? 0 : Math.round(NOISE_REQUESTS_PER_SECOND * SCRAPE_INTERVAL_SECONDS * jitter), [1]);
      const lines: Line[] = [];
      const rows = {} as Record<Side, LedgerRow>;

      for (const key of keys) {
        // The canary's series appear with its first traffic, when the rollout starts.
        const active = key !== 'canary' || t >= start;
        if (key === 'canary' || key === 'stable') rows[key] = { active, requests: 0, errors: 0, buckets: new Array<number>(plane.bucketsSeconds.length + 1).fill(0) };
        if (!active) continue;
        const n = key === 'canary' ? toCanary : key === 'stable' ? toStable : noise;
        const e = key === 'canary' || key === 'stable' ? this.errorRate(key, at) : NOISE_ERROR_RATE;
        const fractions = pods.flatMap((_, p) => CATEGORIES.map((c) => c.share(e) * (POD_SHARES[p] ?? 0)));
        const inc = carries.get(key)!.split(n, fractions);
        const running = counts.get(key)!;
        pods.forEach((_, p) => CATEGORIES.forEach((_, c) => (running[p]![c]! += inc[p * CATEGORIES.length + c] ?? 0)));
        const profile = key === 'canary' && this.slow('canary') ? plane.slow : plane.fast;
        const row = key === 'canary' || key === 'stable' ? rows[key] : undefined;
        pods.forEach((pod, p) =>
          this.emit(lines, plane, profile, at, backendName(this.flavour, key), pod, running[p]!, row),
        );
      }
      yield { lines, rows };
    }
  }

  private emit(lines: Line[], plane: Plane, profile: readonly number[], at: Date, backend: string, pod: string, counts: readonly number[], row?: LedgerRow): void {
    const ts = at.getTime() / 1000;
    const push = (family: string, name: string, labels: Record<string, string>, value: number) => {
      const text = Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeOpenMetricsLabel(v)}"`)
        .join(',');
      lines.push({ family, text: `${name}{${text}} ${value} ${ts}\n` });
    };
    const histogram = (family: string, labels: Record<string, string>, count: number, meanSeconds: number, unit: number) => {
      const cumulative = [...profile.map((f) => Math.round(count * f)), count];
      cumulative.forEach((v, b) => {
        const bound = plane.bucketsSeconds[b];
        push(family, `${family}_bucket`, { ...labels, le: bound === undefined ? '+Inf' : plane.le(bound) }, v);
        if (row) row.buckets[b]! += v;
      });
      push(family, `${family}_count`, labels, count);
      push(family, `${family}_sum`, labels, Math.round(count * meanSeconds * unit * 1000) / 1000);
    };
    const total = counts.reduce((a, b) => a + b, 0);
    const errors = CATEGORIES.reduce((sum, c, i) => sum + (c.isError ? (counts[i] ?? 0) : 0), 0);
    if (row) {
      row.requests += total;
      row.errors += errors;
    }
    const mean = profile === planeOf(this.flavour).slow ? 0.4 : 0.15;

    if (this.flavour === 'envoy-gateway') {
      // What Prometheus stores from a scrape of the Envoy pod: Envoy's tags plus the pod's labels.
      const labels = { envoy_cluster_name: backend, namespace: 'envoy-gateway-system', pod };
      const byClass = new Map<string, number>();
      CATEGORIES.forEach((c, i) => byClass.set(c.code[0]!, (byClass.get(c.code[0]!) ?? 0) + (counts[i] ?? 0)));
      for (const [cls, value] of byClass) push('envoy_cluster_upstream_rq_xx', 'envoy_cluster_upstream_rq_xx', { ...labels, envoy_response_code_class: cls }, value);
      push('envoy_cluster_upstream_rq_total', 'envoy_cluster_upstream_rq_total', labels, total + Math.floor(total * RETRY_ATTEMPTS));
      histogram('envoy_cluster_upstream_rq_time', labels, total, mean, 1000);
      return;
    }
    CATEGORIES.forEach((c, i) => {
      const labels = { code: c.code, method: c.method, namespace: 'traefik', pod, protocol: 'http', service: backend };
      push('traefik_service_requests', 'traefik_service_requests_total', labels, counts[i] ?? 0);
      histogram('traefik_service_request_duration_seconds', labels, counts[i] ?? 0, mean, 1);
    });
  }
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

// OpenMetrics families. Envoy's counters are exposed without a `_total` suffix of their own making
// (`upstream_rq_total` is the stat's name), so they are declared `unknown`, which keeps the names
// as Prometheus stores them from Envoy's text output; Traefik's counter is a proper `_total` counter.
const FAMILIES: Record<'envoy' | 'traefik', { name: string; type: string; help: string }[]> = {
  envoy: [
    { name: 'envoy_cluster_upstream_rq_xx', type: 'unknown', help: 'Aggregate HTTP response codes' },
    { name: 'envoy_cluster_upstream_rq_total', type: 'unknown', help: 'Total requests' },
    { name: 'envoy_cluster_upstream_rq_time', type: 'histogram', help: 'Request time milliseconds' },
  ],
  traefik: [
    { name: 'traefik_service_requests', type: 'counter', help: 'How many HTTP requests processed on a service, partitioned by status code, protocol, and method.' },
    {
      name: 'traefik_service_request_duration_seconds',
      type: 'histogram',
      help: 'How long it took to process the request on a service, partitioned by status code, protocol, and method.',
    },
  ],
};

/**
 * Each flavour's scenarios on days of their own from ROLLOUT_START. Envoy and Traefik metrics have
 * different names, so those two share days; Traefik's two providers share metric names (and the
 * traefik preset matches both), so they do not.
 */
const FIRST_DAY: Record<Flavour, number> = { 'envoy-gateway': 0, 'traefik-ingress-nginx': 0, 'traefik-gateway': DATAPLANE_SCENARIOS.length };

export function dataPlaneModels(flavours: readonly Flavour[] = ['envoy-gateway', 'traefik-ingress-nginx', 'traefik-gateway']): Map<string, DataPlaneModel> {
  const policy = loadPolicy();
  const out = new Map<string, DataPlaneModel>();
  for (const flavour of flavours) {
    DATAPLANE_SCENARIOS.forEach((scenario, i) => {
      const start = new Date(ROLLOUT_START.getTime() + (FIRST_DAY[flavour] + i) * 86_400_000);
      out.set(`${flavour}/${scenario}`, new DataPlaneModel(flavour, scenario, { policy, start }));
    });
  }
  return out;
}

/** Writes the models as one OpenMetrics file for promtool, family by family, each series in time order. */
export async function writeDataPlaneOpenMetrics(path: string, models: Iterable<DataPlaneModel>): Promise<void> {
  const all = [...models];
  const out = createWriteStream(path, { encoding: 'utf8' });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  for (const plane of ['envoy', 'traefik'] as const) {
    const models = all.filter((m) => (m.flavour === 'envoy-gateway') === (plane === 'envoy'));
    if (models.length === 0) continue;
    for (const family of FAMILIES[plane]) {
      let chunk = `# HELP ${family.name} ${family.help}\n# TYPE ${family.name} ${family.type}\n`;
      // Models of one family must not overlap in time for the same series: they are on separate days.
      for (const model of [...models].sort((a, b) => a.timeline.start.getTime() - b.timeline.start.getTime())) {
        for (const line of model.lines()) {
          if (line.family !== family.name) continue;
          chunk += line.text;
          if (chunk.length > 1 << 16) {
            if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
            chunk = '';
          }
        }
      }
      if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
    }
  }
  out.write('# EOF\n');
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
}
