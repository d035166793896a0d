import { loadPolicy } from '../src/policy/loader.js';
import type { Policy } from '../src/policy/policy.js';
import type { QueryTarget, Side } from '../src/analysis/promql-template.js';

// Synthetic ingress-nginx traffic for target `checkout` in namespace `shop`, from which the
// real-Prometheus tests and the shipped recordings are made. Everything is deterministic (a
// seeded PRNG, integer request counts handed out with carried remainders), and the model keeps
// a small ledger of what it emitted so tests can compare Prometheus's answers with exact values.

export const ROLLOUT_START = new Date('2026-01-15T10:00:00Z');
export const SCRAPE_INTERVAL_SECONDS = 15;
const SCRAPE_MS = SCRAPE_INTERVAL_SECONDS * 1000;
const MINUTE = 60_000;

/** ingress-nginx's default request-duration buckets (seconds); +Inf is implicit. */
export const NGINX_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export const TARGET: QueryTarget = {
  namespace: 'shop',
  ingress: 'checkout',
  stableService: 'checkout',
  canaryService: 'checkout-canary',
  stableDeployment: 'checkout',
  canaryDeployment: 'checkout-canary',
};

/** ingress-nginx's `canary` label: `<namespace>-<canary service>-<port>`. */
export const CANARY_UPSTREAM = 'shop-checkout-canary-80';
export const PODS: Record<Side, string> = {
  stable: 'checkout-7d9f8c6b5-x2k4p',
  canary: 'checkout-canary-5c8d7f9b4-q8w3n',
};
export const CONTAINER = 'checkout';
export const CONTROLLER_PODS = ['ingress-nginx-controller-6c8b9f7d5-4kq2z', 'ingress-nginx-controller-6c8b9f7d5-w7m9t'] as const;

export const SCENARIO_NAMES = ['healthy', 'error-regression', 'latency-regression', 'no-traffic'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export function isScenarioName(value: string): value is ScenarioName {
  return (SCENARIO_NAMES as readonly string[]).includes(value);
}

// ---------------------------------------------------------------------------------------------
// Timeline

export interface Phase {
  /** Canary weight in percent. */
  weight: number;
  from: Date;
  to: Date;
}

export interface Timeline {
  historyStart: Date;
  start: Date;
  end: Date;
  /** The policy's steps followed by the promoted (100%) phase. */
  phases: Phase[];
}

export interface TimelineOptions {
  start?: Date;
  policy?: Policy;
  historyMinutes?: number;
  promotedMinutes?: number;
}

/** The default rollout schedule read from the shipped policy, so the data follows the runbook. */
export function rolloutTimeline(options: TimelineOptions = {}): Timeline {
  const start = options.start ?? ROLLOUT_START;
  const policy = options.policy ?? loadPolicy();
  const phases: Phase[] = [];
  let at = start.getTime();
  for (const step of policy.steps) {
    phases.push({ weight: step.weight, from: new Date(at), to: new Date(at + step.durationMs) });
    at += step.durationMs;
  }
  const promotedMs = (options.promotedMinutes ?? 5) * MINUTE;
  phases.push({ weight: 100, from: new Date(at), to: new Date(at + promotedMs) });
  return {
    historyStart: new Date(start.getTime() - (options.historyMinutes ?? 5) * MINUTE),
    start,
    end: new Date(at + promotedMs),
    phases,
  };
}

/**
 * The canary's scheduled weight (percent) for the scrape interval that ends at `at`: 0 until
 * the rollout starts, then each phase's weight for intervals ending inside (from, to].
 */
export function scheduledWeightAt(timeline: Timeline, at: Date): number {
  const t = at.getTime();
  const phase = timeline.phases.find((p) => t > p.from.getTime() && t <= p.to.getTime());
  return phase?.weight ?? 0;
}

/** The time `minutesIn` minutes after phase `index` begins (a check time, for tests). */
export function phaseAt(timeline: Timeline, index: number, minutesIn: number): Date {
  const phase = timeline.phases[index];
  if (!phase) throw new Error(`traffic model: the timeline has no phase ${index}`);
  return new Date(phase.from.getTime() + minutesIn * MINUTE);
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/** Fraction of requests at or under each finite bucket bound (same length as the buckets). */
export interface LatencyProfile {
  cumulative: readonly number[];
}

// P95 lands at 0.1 + 0.15 × (0.95 − 0.88) / (0.995 − 0.88) ≈ 0.191 s.
const FAST: LatencyProfile = { cumulative: [0.01, 0.05, 0.2, 0.5, 0.88, 0.995, 0.999, 1, 1, 1, 1] };
// P95 lands at 0.25 + 0.25 × (0.95 − 0.75) / (0.985 − 0.75) ≈ 0.463 s, about 2.4 × FAST.
// Both keep the 95th percentile well inside one bucket, so rounding to whole requests in a
// one-minute window cannot move it to the next bucket.
const SLOW: LatencyProfile = { cumulative: [0, 0.01, 0.05, 0.2, 0.45, 0.75, 0.985, 0.997, 1, 1, 1] };

export const BASE_ERROR_RATE = 0.005;
export const REGRESSED_ERROR_RATE = 0.12;
export const TOTAL_REQUESTS_PER_SECOND = 40;

export interface Scenario {
  name: ScenarioName;
  summary: string;
  /** Requests per second at the checkout Ingress, canary and stable together. */
  requestsPerSecond: number;
  /** False when the canary never receives a request (its series never exist). */
  canaryServes: boolean;
  errorRate(side: Side, at: Date, timeline: Timeline): number;
  latency: Record<Side, LatencyProfile>;
}

const flatErrors = () => BASE_ERROR_RATE;

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  healthy: {
    name: 'healthy',
    summary: 'canary and stable alike: ~0.5% errors, P95 ~0.19 s',
    requestsPerSecond: TOTAL_REQUESTS_PER_SECOND,
    canaryServes: true,
    errorRate: flatErrors,
    latency: { canary: FAST, stable: FAST },
  },
  'error-regression': {
    name: 'error-regression',
    summary: "canary errors rise to 12% five minutes into the second step",
    requestsPerSecond: TOTAL_REQUESTS_PER_SECOND,
    canaryServes: true,
    errorRate: (side, at, timeline) =>
      side === 'canary' && at.getTime() > errorRiseAt(timeline).getTime() ? REGRESSED_ERROR_RATE : BASE_ERROR_RATE,
    latency: { canary: FAST, stable: FAST },
  },
  'latency-regression': {
    name: 'latency-regression',
    summary: 'canary P95 ~0.46 s against stable ~0.19 s from the start',
    requestsPerSecond: TOTAL_REQUESTS_PER_SECOND,
    canaryServes: true,
    errorRate: flatErrors,
    latency: { canary: SLOW, stable: FAST },
  },
  'no-traffic': {
    name: 'no-traffic',
    summary: 'the canary serves no requests; stable carries everything',
    requestsPerSecond: TOTAL_REQUESTS_PER_SECOND,
    canaryServes: false,
    errorRate: flatErrors,
    latency: { canary: FAST, stable: FAST },
  },
};

/** When the error-regression canary starts failing: five minutes into the second step. */
export function errorRiseAt(timeline: Timeline): Date {
  const second = timeline.phases[1];
  if (!second) throw new Error('traffic model: the policy needs at least two steps for error-regression');
  return new Date(second.from.getTime() + 5 * MINUTE);
}

// ---------------------------------------------------------------------------------------------
// Histogram arithmetic, as Prometheus does it

/** Bucket bounds including +Inf. */
export const BUCKET_BOUNDS: readonly number[] = [...NGINX_DURATION_BUCKETS, Number.POSITIVE_INFINITY];

/** Prometheus's histogram_quantile over cumulative bucket counts (linear interpolation). */
export function histogramQuantile(q: number, cumulativeCounts: readonly number[], bounds = BUCKET_BOUNDS): number {
  const total = cumulativeCounts[cumulativeCounts.length - 1] ?? 0;
  if (cumulativeCounts.length < 2 || total <= 0) return Number.NaN;
  let rank = q * total;
  let b = cumulativeCounts.findIndex((c, i) => i < cumulativeCounts.length - 1 && c >= rank);
  if (b === -1) b = cumulativeCounts.length - 1;
  if (b === cumulativeCounts.length - 1) return bounds[bounds.length - 2] ?? Number.NaN;
  const upper = bounds[b] ?? Number.NaN;
  if (b === 0 && upper <= 0) return upper;
  let lower = 0;
  let count = cumulativeCounts[b] ?? 0;
  if (b > 0) {
    lower = bounds[b - 1] ?? 0;
    const below = cumulativeCounts[b - 1] ?? 0;
    count -= below;
    rank -= below;
  }
  return lower + (upper - lower) * (rank / count);
}

/** The bucket (lower, upper] a latency falls in: the precision a histogram P95 can have. */
export function bucketOf(seconds: number): { lower: number; upper: number } {
  const i = BUCKET_BOUNDS.findIndex((b) => seconds <= b);
  return { lower: i <= 0 ? 0 : (BUCKET_BOUNDS[i - 1] ?? 0), upper: BUCKET_BOUNDS[i] ?? Number.POSITIVE_INFINITY };
}

/** The P95 (or other quantile) a profile implies for an unbounded number of requests. */
export function profileQuantile(profile: LatencyProfile, q = 0.95): number {
  return histogramQuantile(q, [...profile.cumulative, 1]);
}

function profileMean(profile: LatencyProfile): number {
  let mean = 0;
  let below = 0;
  let lower = 0;
  profile.cumulative.forEach((c, i) => {
    const upper = NGINX_DURATION_BUCKETS[i] ?? lower;
    mean += (c - below) * ((lower + upper) / 2);
    below = c;
    lower = upper;
  });
  return mean + (1 - below) * lower * 1.5;
}

// ---------------------------------------------------------------------------------------------
// Deterministic helpers

/** mulberry32: tiny, fast, and good enough for traffic jitter. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * Splits whole requests over categories in proportion to `fractions`, carrying each category's
 * remainder to the next split so long-run proportions are exact and every count is an integer.
 */
class CarryAllocator {
  private readonly carry: number[];
  constructor(size: number) {
    this.carry = new Array<number>(size).fill(0);
  }

  split(n: number, fractions: readonly number[]): number[] {
    const raw = fractions.map((f, i) => n * f + (this.carry[i] ?? 0));
    const out = raw.map((r) => Math.max(0, Math.floor(r)));
    let left = n - out.reduce((a, b) => a + b, 0);
    const byRemainder = raw.map((r, i) => i).sort((a, b) => (raw[b]! - out[b]!) - (raw[a]! - out[a]!));
    for (let k = 0; left > 0; k = (k + 1) % out.length, left--) out[byRemainder[k]!]! += 1;
    for (let k = out.length - 1; left < 0; k = (k - 1 + out.length) % out.length) {
      const i = byRemainder[k]!;
      if (out[i]! > 0) {
        out[i]! -= 1;
        left++;
      }
    }
    raw.forEach((r, i) => (this.carry[i] = r - out[i]!));
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Streams: the traffic sources the model emits

interface Route {
  method: string;
  path: string;
  share: number;
  ok: string;
  error: string;
  clientError?: string;
}

// Errors hit both routes at the scenario's rate; a 404 on the cart (a client error) must never
// count as an error, and 500 and 503 must both count.
const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/api/cart', share: 0.6, ok: '200', error: '503', clientError: '404' },
  { method: 'POST', path: '/api/checkout', share: 0.4, ok: '201', error: '500' },
];
const CLIENT_ERROR_RATE = 0.01;
const CONTROLLER_SHARES = [0.5, 0.5] as const;

interface Category {
  method: string;
  path: string;
  status: string;
  controllerPod: string;
  isError: boolean;
  fraction(errorRate: number): number;
}

function categories(controllerPods: readonly string[]): Category[] {
  const out: Category[] = [];
  for (const route of ROUTES) {
    const statuses: { status: string; isError: boolean; share: (e: number) => number }[] = [
      { status: route.ok, isError: false, share: (e) => 1 - e - (route.clientError ? CLIENT_ERROR_RATE : 0) },
      ...(route.clientError ? [{ status: route.clientError, isError: false, share: () => CLIENT_ERROR_RATE }] : []),
      { status: route.error, isError: true, share: (e: number) => e },
    ];
    for (const s of statuses) {
      controllerPods.forEach((pod, i) => {
        const podShare = controllerPods.length === 1 ? 1 : (CONTROLLER_SHARES[i] ?? 0);
        out.push({
          method: route.method,
          path: route.path,
          status: s.status,
          controllerPod: pod,
          isError: s.isError,
          fraction: (e) => route.share * s.share(e) * podShare,
        });
      });
    }
  }
  return out;
}

type StreamKey = Side | 'other-ingress' | 'other-namespace';

interface Stream {
  key: StreamKey;
  labels: { namespace: string; ingress: string; service: string; canary: string };
  categories: Category[];
  latency: LatencyProfile;
  mean: number;
  /** Epoch ms of the first scrape that has this stream's series. */
  activeFrom: number;
  /** Share of requests that fail (5xx) in the scrape interval ending at `at`. */
  errorRate(at: Date): number;
}

// Traffic the presets must not pick up: another Ingress in the same namespace and the same
// Ingress name in another namespace, both failing loudly.
const NOISE_REQUESTS_PER_SECOND = 4;
const NOISE_ERROR_RATE = 0.3;

// ---------------------------------------------------------------------------------------------
// The model

export type FamilyName =
  | 'nginx_ingress_controller_requests'
  | 'nginx_ingress_controller_request_duration_seconds'
  | 'container_memory_working_set_bytes'
  | 'container_cpu_usage_seconds';

export interface Family {
  name: FamilyName;
  /** OpenMetrics type. */
  type: 'unknown' | 'histogram' | 'gauge' | 'counter';
  help: string;
}

export const FAMILIES: readonly Family[] = [
  // OpenMetrics wants counters exposed as `<name>_total`; ingress-nginx's counter has no suffix,
  // so it is declared `unknown`, which keeps the real name (as Prometheus stores it).
  { name: 'nginx_ingress_controller_requests', type: 'unknown', help: 'The total number of client requests' },
  {
    name: 'nginx_ingress_controller_request_duration_seconds',
    type: 'histogram',
    help: 'The request processing time in milliseconds',
  },
  { name: 'container_memory_working_set_bytes', type: 'gauge', help: 'Current working set in bytes' },
  { name: 'container_cpu_usage_seconds', type: 'counter', help: 'Cumulative cpu time consumed in seconds' },
];

export interface Sample {
  family: FamilyName;
  /** Full sample name, e.g. `..._bucket` or `container_cpu_usage_seconds_total`. */
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

export interface Scrape {
  at: Date;
  samples: Sample[];
}

export interface WindowStats {
  requests: number;
  errors: number;
  /** errors / requests; NaN when no requests. */
  errorRate: number;
  /** histogram_quantile(0.95) over the window's bucket increments; NaN when no requests. */
  p95: number;
}

export interface ResourceStats {
  memoryBytes: number;
  cpuCores: number;
}

export interface Nominal {
  weight: number;
  errorRate: number;
  p95: number;
}

interface LedgerRow {
  active: boolean;
  requests: number;
  errors: number;
  buckets: number[];
}

interface PodRow {
  active: boolean;
  memory: number;
  cpuSeconds: number;
}

export interface ModelOptions {
  timeline?: Timeline;
  seed?: number;
}

const MiB = 1024 * 1024;
const POD_MEMORY: Record<Side, number> = { stable: 384 * MiB, canary: 416 * MiB };
const PAUSE_MEMORY = 1 * MiB;
// The new build is a little hungrier, so canary and stable differ even at 50%.
const IDLE_CORES: Record<Side, number> = { stable: 0.02, canary: 0.03 };
const CORES_PER_RPS: Record<Side, number> = { stable: 0.004, canary: 0.0045 };

export class TrafficModel {
  readonly scenario: Scenario;
  readonly timeline: Timeline;
  readonly seed: number;
  private ledgerCache?: { streams: Map<StreamKey, LedgerRow[]>; pods: Map<Side, PodRow[]> };

  constructor(name: ScenarioName, options: ModelOptions = {}) {
    this.scenario = SCENARIOS[name];
    this.timeline = options.timeline ?? rolloutTimeline();
    this.seed = options.seed ?? hashString(name);
  }

  /** Scrape times from the start of history to the end, every 15 s. */
  scrapeTimes(): Date[] {
    const out: Date[] = [];
    for (let t = this.timeline.historyStart.getTime(); t <= this.timeline.end.getTime(); t += SCRAPE_MS) out.push(new Date(t));
    return out;
  }

  /** Every sample of every scrape, generated afresh (bounded memory: one scrape at a time). */
  *scrapes(): Generator<Scrape> {
    for (const step of this.simulate()) yield { at: step.at, samples: step.samples };
  }

  /** What the shipped presets should find for one side over the window ending at `at`. */
  window(side: Side, at: Date, windowSeconds = 60): WindowStats | null {
    const rows = this.ledger().streams.get(side) ?? [];
    const [end, begin] = this.rowsAround(rows, at, windowSeconds);
    if (!end?.active) return null;
    if (!begin?.active) {
      throw new Error(`traffic model: the ${side} series start inside the window ending ${at.toISOString()}; pick a later time`);
    }
    const requests = end.requests - begin.requests;
    const errors = end.errors - begin.errors;
    const buckets = end.buckets.map((c, i) => c - (begin.buckets[i] ?? 0));
    return {
      requests,
      errors,
      errorRate: requests > 0 ? errors / requests : Number.NaN,
      p95: histogramQuantile(0.95, buckets),
    };
  }

  /** Memory of the side's pod at `at` and its CPU (cores) averaged over the window. */
  resources(side: Side, at: Date, windowSeconds = 60): ResourceStats | null {
    const rows = this.ledger().pods.get(side) ?? [];
    const [end, begin] = this.rowsAround(rows, at, windowSeconds);
    if (!end?.active) return null;
    if (!begin?.active) throw new Error(`traffic model: the ${side} pod starts inside the window ending ${at.toISOString()}`);
    return { memoryBytes: end.memory, cpuCores: (end.cpuSeconds - begin.cpuSeconds) / windowSeconds };
  }

  /** The scenario's configured numbers for a side at a time (before integer rounding). */
  nominal(side: Side, at: Date): Nominal {
    const weight = this.canaryWeight(at);
    return {
      weight: side === 'canary' ? weight : 100 - weight,
      errorRate: this.scenario.errorRate(side, at, this.timeline),
      p95: profileQuantile(this.scenario.latency[side]),
    };
  }

  /** Canary weight actually served (0 throughout when the scenario's canary gets no traffic). */
  canaryWeight(at: Date): number {
    return this.scenario.canaryServes ? scheduledWeightAt(this.timeline, at) : 0;
  }

  private rowsAround<T>(rows: readonly T[], at: Date, windowSeconds: number): [T | undefined, T | undefined] {
    const offset = at.getTime() - this.timeline.historyStart.getTime();
    if (offset % SCRAPE_MS !== 0 || (windowSeconds * 1000) % SCRAPE_MS !== 0) {
      throw new Error(`traffic model: ${at.toISOString()} and a ${windowSeconds}s window must align with the 15s scrapes`);
    }
    const i = offset / SCRAPE_MS;
    return [rows[i], rows[i - (windowSeconds * 1000) / SCRAPE_MS]];
  }

  private streams(): Stream[] {
    const { timeline, scenario } = this;
    const noise = (key: StreamKey, namespace: string, ingress: string): Stream => ({
      key,
      labels: { namespace, ingress, service: ingress, canary: '' },
      categories: categories([CONTROLLER_PODS[0]]),
      latency: FAST,
      mean: profileMean(FAST),
      activeFrom: timeline.historyStart.getTime(),
      errorRate: () => NOISE_ERROR_RATE,
    });
    const side = (key: Side): Stream => ({
      key,
      labels: { namespace: TARGET.namespace, ingress: TARGET.ingress, service: TARGET.stableService, canary: key === 'canary' ? CANARY_UPSTREAM : '' },
      categories: categories(CONTROLLER_PODS),
      latency: scenario.latency[key],
      mean: profileMean(scenario.latency[key]),
      // ingress-nginx creates a series at its first request; the canary's appear when it starts.
      activeFrom: key === 'canary' ? (scenario.canaryServes ? timeline.start.getTime() : Number.POSITIVE_INFINITY) : timeline.historyStart.getTime(),
      errorRate: (at) => scenario.errorRate(key, at, timeline),
    });
    return [side('stable'), side('canary'), noise('other-ingress', TARGET.namespace, 'cart'), noise('other-namespace', 'staging', TARGET.ingress)];
  }

  private ledger(): { streams: Map<StreamKey, LedgerRow[]>; pods: Map<Side, PodRow[]> } {
    if (this.ledgerCache) return this.ledgerCache;
    const streams = new Map<StreamKey, LedgerRow[]>();
    const pods = new Map<Side, PodRow[]>();
    for (const step of this.simulate()) {
      for (const [key, row] of step.streamTotals) (streams.get(key) ?? streams.set(key, []).get(key)!).push(row);
      for (const [key, row] of step.podTotals) (pods.get(key) ?? pods.set(key, []).get(key)!).push(row);
    }
    this.ledgerCache = { streams, pods };
    return this.ledgerCache;
  }

  private *simulate(): Generator<Scrape & { streamTotals: Map<StreamKey, LedgerRow>; podTotals: Map<Side, PodRow> }> {
    const random = seededRandom(this.seed);
    const streams = this.streams();
    const state = streams.map((s) => ({
      allocator: new CarryAllocator(s.categories.length),
      counts: new Array<number>(s.categories.length).fill(0),
    }));
    const splitter = new CarryAllocator(2);
    const noiseSplitter = new CarryAllocator(1);
    const cpuSeconds: Record<Side, number> = { stable: 0, canary: 0 };

    for (const at of this.scrapeTimes()) {
      const t = at.getTime();
      const first = t === this.timeline.historyStart.getTime();
      const samples: Sample[] = [];
      const streamTotals = new Map<StreamKey, LedgerRow>();
      const podTotals = new Map<Side, PodRow>();

      // Requests in the interval that ends now: ±10% jitter around the scenario's rate.
      const jitter = 0.9 + 0.2 * random();
      const total = first ? 0 : Math.round(this.scenario.requestsPerSecond * SCRAPE_INTERVAL_SECONDS * jitter);
      const weight = this.canaryWeight(at);
      const [toCanary = 0, toStable = 0] = splitter.split(total, [weight / 100, 1 - weight / 100]);
      const [noise = 0] = noiseSplitter.split(first ? 0 : Math.round(NOISE_REQUESTS_PER_SECOND * SCRAPE_INTERVAL_SECONDS * jitter), [1]);
      const served: Record<Side, number> = { stable: toStable, canary: toCanary };

      streams.forEach((stream, s) => {
        const st = state[s]!;
        if (t < stream.activeFrom) {
          streamTotals.set(stream.key, { active: false, requests: 0, errors: 0, buckets: [] });
          return;
        }
        const n = stream.key === 'stable' || stream.key === 'canary' ? served[stream.key] : noise;
        const e = stream.errorRate(at);
        const inc = st.allocator.split(n, stream.categories.map((c) => c.fraction(e)));
        const row: LedgerRow = { active: true, requests: 0, errors: 0, buckets: new Array<number>(BUCKET_BOUNDS.length).fill(0) };
        stream.categories.forEach((cat, c) => {
          const count = (st.counts[c] ?? 0) + (inc[c] ?? 0);
          st.counts[c] = count;
          const labels = {
            canary: stream.labels.canary,
            controller_pod: cat.controllerPod,
            ingress: stream.labels.ingress,
            method: cat.method,
            namespace: stream.labels.namespace,
            path: cat.path,
            service: stream.labels.service,
            status: cat.status,
          };
          samples.push({ family: 'nginx_ingress_controller_requests', name: 'nginx_ingress_controller_requests', labels, value: count });
          const cumulative = [...stream.latency.cumulative.map((f) => Math.round(count * f)), count];
          cumulative.forEach((v, b) => {
            row.buckets[b]! += v;
            samples.push({
              family: 'nginx_ingress_controller_request_duration_seconds',
              name: 'nginx_ingress_controller_request_duration_seconds_bucket',
              labels: { ...labels, le: formatBound(BUCKET_BOUNDS[b] ?? Number.POSITIVE_INFINITY) },
              value: v,
            });
          });
          const family = 'nginx_ingress_controller_request_duration_seconds';
          samples.push({ family, name: `${family}_count`, labels, value: count });
          samples.push({ family, name: `${family}_sum`, labels, value: round6(count * stream.mean) });
          row.requests += count;
          if (cat.isError) row.errors += count;
        });
        streamTotals.set(stream.key, row);
      });

      const podStart: Record<Side, number> = { stable: this.timeline.historyStart.getTime(), canary: this.timeline.start.getTime() };
      for (const side of ['stable', 'canary'] as const) {
        if (t < podStart[side]) {
          podTotals.set(side, { active: false, memory: 0, cpuSeconds: 0 });
          continue;
        }
        // A slow sawtooth so memory is not a constant, but exactly known at every scrape.
        const memory = POD_MEMORY[side] + ((t / SCRAPE_MS) % 8) * MiB;
        if (t > podStart[side]) {
          cpuSeconds[side] += (IDLE_CORES[side] + (CORES_PER_RPS[side] * served[side]) / SCRAPE_INTERVAL_SECONDS) * SCRAPE_INTERVAL_SECONDS;
        }
        const cpu = round6(cpuSeconds[side]);
        podTotals.set(side, { active: true, memory, cpuSeconds: cpu });
        const pod = { namespace: TARGET.namespace, pod: PODS[side] };
        const containers: [string, number, number][] = [
          [CONTAINER, memory, cpu],
          // cAdvisor also reports the pause container and the pod's cgroup (container="");
          // the presets must leave both out or they count the pod twice.
          ['POD', PAUSE_MEMORY, round6(cpu / 1000)],
          ['', memory + PAUSE_MEMORY + 2 * MiB, round6(cpu * 1.001)],
        ];
        for (const [container, mem, cpuTotal] of containers) {
          const labels = { ...pod, container };
          samples.push({ family: 'container_memory_working_set_bytes', name: 'container_memory_working_set_bytes', labels, value: mem });
          samples.push({ family: 'container_cpu_usage_seconds', name: 'container_cpu_usage_seconds_total', labels: { ...labels, cpu: 'total' }, value: cpuTotal });
        }
      }
      yield { at, samples, streamTotals, podTotals };
    }
  }
}

function formatBound(bound: number): string {
  return bound === Number.POSITIVE_INFINITY ? '+Inf' : String(bound);
}

function round6(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

/** Models of every scenario on one timeline each; `dayOffset` puts scenario i on day i. */
export function scenarioModels(options: { dayOffset?: boolean; start?: Date } = {}): Map<ScenarioName, TrafficModel> {
  const base = (options.start ?? ROLLOUT_START).getTime();
  const policy = loadPolicy();
  return new Map(
    SCENARIO_NAMES.map((name, i) => [
      name,
      new TrafficModel(name, { timeline: rolloutTimeline({ policy, start: new Date(base + (options.dayOffset ? i * 86_400_000 : 0)) }) }),
    ]),
  );
}
