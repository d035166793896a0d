import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Rng, lognormalCdf } from './random.js';
import { HISTORY_AFTER_MS, HISTORY_BEFORE_MS, ROLLOUT_START_MS, SCRAPE_MS, canaryShareAt, type RolloutSpec, type SideModel } from './spec.js';

// Turns a rollout spec into what two ingress-nginx controller pods would have exposed, scrape by
// scrape, and writes it as OpenMetrics for `promtool tsdb create-blocks-from openmetrics`.
//
// Per 30 s interval: requests arrive as a Poisson draw around a slowly drifting rate, split
// between the controller pods and, by the step's weight, between stable and canary. Each side
// draws its own error probability for the interval from Beta(c·p, c·(1−p)) (so 5xx come in
// bursts no judge can predict from a binomial model) and its own small shift of the lognormal
// latency. Series exist only once a request with their labels has been seen (the canary's are
// born at the rollout's start, a rare status's whenever it first happens), and controller pod 1
// restarts once: two missed scrapes, then counters start again from zero.

/** ingress-nginx's default request-duration buckets (seconds), +Inf last. */
export const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Number.POSITIVE_INFINITY] as const;
const LE = BUCKETS.map((b) => (b === Number.POSITIVE_INFINITY ? '+Inf' : String(b)));
export const INTERVALS = (HISTORY_BEFORE_MS + HISTORY_AFTER_MS) / SCRAPE_MS;
export const HISTORY_START_MS = ROLLOUT_START_MS - HISTORY_BEFORE_MS;
/** Scrape-to-scrape wander of each side's log-median latency (sd). */
const LATENCY_WANDER = 0.03;
/** How long the restarting controller pod is down. */
const RESTART_DOWN_MS = 60_000;
/** A dead canary's 503s come from the controller itself, in milliseconds. */
const DEAD = { mu: Math.log(0.002), sigma: 0.5 };

type SideName = 'stable' | 'canary';
type Status = '200' | '500' | '503';

interface SeriesState {
  labels: string;
  requests: number;
  buckets: Float64Array;
  sum: number;
}

export interface Row {
  atMs: number;
  series: SeriesState;
  requests: number;
  buckets: Float64Array;
  sum: number;
}

/** What one controller pod served a side, per 30 s interval (reported by its next scrape). */
export interface Truth {
  requests: Float64Array;
  errors: Float64Array;
  /** INTERVALS × BUCKETS.length, per-interval (not cumulative) counts. */
  buckets: Float64Array;
}

export interface GeneratedRollout {
  spec: RolloutSpec;
  rows: Row[];
  /** Per side, per controller pod. */
  truth: Record<SideName, [Truth, Truth]>;
}

function bucketProbabilities(mu: number, sigma: number): number[] {
  let previous = 0;
  return BUCKETS.map((bound) => {
    const cdf = bound === Number.POSITIVE_INFINITY ? 1 : lognormalCdf(bound, mu, sigma);
    const p = Math.max(0, cdf - previous);
    previous = cdf;
    return p;
  });
}

function controllerPods(spec: RolloutSpec): [string, string] {
  const rng = new Rng(spec.seed ^ 0x5bd1e995);
  const chars = 'bcdfghjklmnpqrstvwxz2456789';
  const word = (n: number) => Array.from({ length: n }, () => chars[Math.floor(rng.uniform() * chars.length)]).join('');
  const hash = word(10);
  return [`ingress-nginx-controller-${hash}-${word(5)}`, `ingress-nginx-controller-${hash}-${word(5)}`];
}

function labelsOf(spec: RolloutSpec, pod: string, side: SideName, status: Status): string {
  const canary = side === 'canary' ? `${spec.id}-checkout-canary-80` : '';
  return (
    `canary="${canary}",controller_class="k8s.io/ingress-nginx",controller_namespace="ingress-nginx",controller_pod="${pod}",` +
    `host="checkout.example.com",ingress="checkout",method="GET",namespace="${spec.id}",path="/",service="checkout",status="${status}"`
  );
}

function emptyTruth(): Truth {
  return { requests: new Float64Array(INTERVALS), errors: new Float64Array(INTERVALS), buckets: new Float64Array(INTERVALS * BUCKETS.length) };
}

/** The latency sum of `count` lognormal requests: its mean plus a normal error of the right size. */
function latencySum(rng: Rng, count: number, mu: number, sigma: number): number {
  if (count <= 0) return 0;
  const mean = Math.exp(mu + (sigma * sigma) / 2);
  const sd = Math.sqrt((Math.exp(sigma * sigma) - 1) * Math.exp(2 * mu + sigma * sigma));
  return Math.max(0, count * mean + Math.sqrt(count) * sd * rng.normal());
}

export function generateRollout(spec: RolloutSpec): GeneratedRollout {
  const rng = new Rng(spec.seed);
  const pods = controllerPods(spec);
  const state = new Map<string, SeriesState>();
  const series = (pod: 0 | 1, side: SideName, status: Status): SeriesState => {
    const key = `${pod}/${side}/${status}`;
    let s = state.get(key);
    if (!s) {
      s = { labels: labelsOf(spec, pods[pod], side, status), requests: 0, buckets: new Float64Array(BUCKETS.length), sum: 0 };
      state.set(key, s);
    }
    return s;
  };
  const truth: Record<SideName, [Truth, Truth]> = { stable: [emptyTruth(), emptyTruth()], canary: [emptyTruth(), emptyTruth()] };
  const rows: Row[] = [];
  let restarted = false;

  for (let k = 0; k < INTERVALS; k++) {
    const t = HISTORY_START_MS + k * SCRAPE_MS;
    const mid = t + SCRAPE_MS / 2;
    const regressed = spec.onset !== null && t >= spec.onset.ms;
    const pod1Down = t >= spec.restartMs && t < spec.restartMs + RESTART_DOWN_MS;
    if (!restarted && t >= spec.restartMs + RESTART_DOWN_MS) {
      // The restarted process starts with empty counters; series reappear at their first request.
      restarted = true;
      for (const key of [...state.keys()]) if (key.startsWith('1/')) state.delete(key);
      // A replaced pod (a new ReplicaSet's, or rescheduled) has a name of its own: new series.
      if (spec.replacePod) pods[1] = `${pods[1].slice(0, -5)}rplcd`;
    }

    const rate = spec.rps * (1 + spec.drift.amplitude * Math.sin((2 * Math.PI * (mid - ROLLOUT_START_MS)) / spec.drift.periodMs + spec.drift.phase));
    const total = rng.poisson(rate * (SCRAPE_MS / 1000));
    const onPod0 = pod1Down ? total : rng.binomial(total, spec.podShare);
    const perPod = [onPod0, total - onPod0] as const;
    const share = spec.deadNoTraffic && regressed ? 0 : canaryShareAt(mid);

    const sides: Record<SideName, { model: SideModel; p: number; mu: number; dead: boolean }> = {
      stable: { model: spec.stable, p: 0, mu: 0, dead: false },
      canary: { model: spec.canary, p: 0, mu: 0, dead: spec.dead5xx && regressed },
    };
    for (const name of ['stable', 'canary'] as const) {
      const s = sides[name];
      const ramp = spec.rampMs > 0 && spec.onset ? Math.min(1, (t - spec.onset.ms) / spec.rampMs) : 1;
      const burst = spec.burst && t >= spec.burst.fromMs && t < spec.burst.toMs ? spec.burst.errorRate : 0;
      const base = Math.max(burst, Math.min(0.999, s.model.errorRate + (name === 'canary' && regressed ? spec.errorDelta * ramp : 0)));
      s.p = s.model.concentration * base > 0 ? rng.beta(s.model.concentration * base, s.model.concentration * (1 - base)) : 0;
      s.mu = s.model.mu + (name === 'canary' && regressed ? Math.log(spec.latencyFactor) : 0) + LATENCY_WANDER * rng.normal();
    }

    for (const pod of [0, 1] as const) {
      const arrived = perPod[pod];
      const toCanary = rng.binomial(arrived, share);
      for (const name of ['stable', 'canary'] as const) {
        const n = name === 'canary' ? toCanary : arrived - toCanary;
        const s = sides[name];
        const parts: { status: Status; count: number; mu: number; sigma: number }[] = s.dead
          ? [{ status: '503', count: n, mu: DEAD.mu, sigma: DEAD.sigma }]
          : (() => {
              const errors = rng.binomial(n, s.p);
              const mode = spec.slowMode;
              const slow = mode ? rng.binomial(n - errors, mode.share) : 0;
              return [
                { status: '200' as const, count: n - errors - slow, mu: s.mu, sigma: s.model.sigma },
                ...(mode ? [{ status: '200' as const, count: slow, mu: s.mu + Math.log(mode.factor), sigma: mode.sigma }] : []),
                { status: '500' as const, count: errors, mu: s.mu, sigma: s.model.sigma },
              ];
            })();
        const tr = truth[name][pod];
        for (const part of parts) {
          if (part.count <= 0) continue;
          const counts = rng.multinomial(part.count, bucketProbabilities(part.mu, part.sigma));
          const target = series(pod, name, part.status);
          target.requests += part.count;
          let cumulative = 0;
          counts.forEach((c, i) => {
            cumulative += c;
            target.buckets[i] = (target.buckets[i] ?? 0) + cumulative;
            tr.buckets[k * BUCKETS.length + i] = (tr.buckets[k * BUCKETS.length + i] ?? 0) + c;
          });
          target.sum += latencySum(rng, part.count, part.mu, part.sigma);
          tr.requests[k] = (tr.requests[k] ?? 0) + part.count;
          if (part.status !== '200') tr.errors[k] = (tr.errors[k] ?? 0) + part.count;
        }
      }
    }

    for (const pod of [0, 1] as const) {
      if (pod === 1 && pod1Down) continue;
      const atMs = t + SCRAPE_MS + spec.scrapeOffsetMs[pod];
      for (const [key, s] of state) {
        if (!key.startsWith(`${pod}/`) || s.requests <= 0) continue;
        rows.push({ atMs, series: s, requests: s.requests, buckets: Float64Array.from(s.buckets), sum: s.sum });
      }
    }
  }
  return { spec, rows, truth };
}

// ---------------------------------------------------------------------------------------------
// OpenMetrics

const FLUSH_AT = 1 << 20;

/**
 * Writes rollouts as one OpenMetrics file: each family once, its series in time order. Rollouts
 * without data (spec.hasData false) are skipped. Returns the number of samples written.
 */
export async function writeOpenMetrics(path: string, rollouts: readonly GeneratedRollout[]): Promise<number> {
  const out = createWriteStream(path, { encoding: 'utf8' });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  let chunk = '';
  let samples = 0;
  const flush = async (force = false) => {
    if (!force && chunk.length < FLUSH_AT) return;
    const ok = out.write(chunk);
    chunk = '';
    if (!ok) await Promise.race([once(out, 'drain'), failed]);
  };
  const ts = (ms: number) => (ms / 1000).toFixed(3);

  // ingress-nginx's counter has no _total suffix, which OpenMetrics requires of counters; as
  // `unknown` it keeps its real name in the TSDB.
  chunk += '# HELP nginx_ingress_controller_requests The total number of client requests\n# TYPE nginx_ingress_controller_requests unknown\n';
  for (const rollout of rollouts) {
    if (!rollout.spec.hasData) continue;
    for (const row of rollout.rows) {
      chunk += `nginx_ingress_controller_requests{${row.series.labels}} ${row.requests} ${ts(row.atMs)}\n`;
      samples++;
      await flush();
    }
  }
  const h = 'nginx_ingress_controller_request_duration_seconds';
  chunk += `# HELP ${h} The request processing time in milliseconds\n# TYPE ${h} histogram\n`;
  for (const rollout of rollouts) {
    if (!rollout.spec.hasData) continue;
    for (const row of rollout.rows) {
      const at = ts(row.atMs);
      const labels = row.series.labels;
      for (let i = 0; i < LE.length; i++) chunk += `${h}_bucket{${labels},le="${LE[i] ?? ''}"} ${row.buckets[i] ?? 0} ${at}\n`;
      chunk += `${h}_count{${labels}} ${row.requests} ${at}\n${h}_sum{${labels}} ${row.sum.toFixed(4)} ${at}\n`;
      samples += LE.length + 2;
      await flush();
    }
  }
  chunk += '# EOF\n';
  await flush(true);
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  return samples;
}
