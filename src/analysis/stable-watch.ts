import type { ErrorRateMetric, LatencyMetric, Policy } from '../policy/policy.js';
import { formatDuration } from '../policy/units.js';
import { CheckContext } from './check-context.js';
import { errorRatio } from './error-rate.js';
import { formatValue } from './format-value.js';
import { quantileLabel } from './latency.js';
import type { QueryTarget } from './promql-template.js';
import { observeTraffic, unusableCounts } from './traffic.js';
import type { MetricsSource, Unit } from './types.js';

// The post-promotion watch's measurements and judgement: stable alone, now, against stable alone
// before the rollout. Pure apart from the queries; the engine room is rollout/post-promotion-watch.ts.
//
// The statistics are deliberately simple and stated: a fixed threshold against the baseline,
// per window (the metric's own limits: max, maxIncrease points over the baseline's error rate,
// maxRatio × the baseline's latency quantile), with analysis.minRequests requests in the window
// or the check is inconclusive. Re-checking a fixed threshold every interval inflates false alarms,
// which is why the watch needs postPromotion.failureLimit breaching checks in a row (default 2).

/** Stable over one window: what the watch compares. Plain data, kept in the record. */
export interface StableFigures {
  /** The window's end. */
  at: string;
  windowMs: number;
  requests: number | null;
  errors: number | null;
  /** errors ÷ requests; null when it cannot be counted. */
  errorRate: number | null;
  latency: { metric: string; quantile: number; seconds: number | null }[];
  /** Why a figure is missing, in Prometheus's terms. */
  problems: string[];
}

export type WatchMetric = ErrorRateMetric | LatencyMetric;

export interface WatchResult {
  metric: string;
  /** "error rate ≤ baseline + 3 points" */
  check: string;
  verdict: 'pass' | 'fail' | 'inconclusive';
  unit: Unit;
  now: number | null;
  baseline: number | null;
  limit: number | null;
  reason: string;
}

export interface WatchJudgement {
  verdict: 'pass' | 'fail' | 'inconclusive';
  results: WatchResult[];
}

/** The metrics the watch applies, in policy order (names were checked by the loader). */
export function watchMetrics(policy: Policy): WatchMetric[] {
  const names = policy.postPromotion?.metrics ?? [];
  return policy.analysis.metrics.filter((m): m is WatchMetric => (m.type === 'error-rate' || m.type === 'latency') && names.includes(m.name));
}

/** Stable's requests, errors and latency quantiles over the window of `windowMs` ending at `at`. */
export async function measureStable(policy: Policy, target: QueryTarget, source: MetricsSource, at: Date, windowMs: number): Promise<StableFigures> {
  // The window is the watch's, not the analysis's: the same query templates, another range.
  const windowed: Policy = { ...policy, analysis: { ...policy.analysis, windowMs } };
  const ctx = new CheckContext(windowed, target, source, at, 0, 0);
  const latencies = watchMetrics(policy).filter((m): m is LatencyMetric => m.type === 'latency');
  const [traffic, ...quantiles] = await Promise.all([
    observeTraffic(ctx, 'stable'),
    ...latencies.map((m) => ctx.value(ctx.render('latency', 'stable', { quantile: m.quantile }))),
  ]);
  const problems: string[] = [];
  const unusable = unusableCounts('stable', traffic, ctx);
  if (unusable) problems.push(unusable);
  const latency = latencies.map((m, i) => {
    const q = quantiles[i];
    if (q && !q.ok) problems.push(`stable ${quantileLabel(m.quantile)}: ${q.detail}`);
    return { metric: m.name, quantile: m.quantile, seconds: q?.ok ? q.value : null };
  });
  return {
    at: at.toISOString(),
    windowMs,
    requests: traffic.requests,
    errors: traffic.errors,
    errorRate: unusable ? null : errorRatio(traffic),
    latency,
    problems,
  };
}

const TIE = 1e-12;
const pct = (v: number | null) => formatValue(v, 'ratio');
const secs = (v: number | null) => formatValue(v, 'seconds');
const pts = (v: number) => `${Number((v * 100).toFixed(2))} points`;

/** Why a window has too few requests to judge, or null. */
function thinRequests(f: StableFigures, minRequests: number, what: string): string | null {
  const n = f.requests;
  if (n !== null && n >= minRequests) return null;
  const window = formatDuration(f.windowMs);
  if (n === null) return `${what}: ${f.problems[0] ?? `no request count for the ${window} window`}`;
  return `${what}: stable served ${Math.round(n)} request${Math.round(n) === 1 ? '' : 's'} in ${window}; at least ${minRequests} are needed to judge`;
}

/** Why a window's error rate cannot be judged, or null. */
function thin(f: StableFigures, minRequests: number, what: string): string | null {
  return thinRequests(f, minRequests, what) ?? (f.errorRate === null ? `${what}: ${f.problems[0] ?? 'no error rate'}` : null);
}

/** Why a window's latency quantile cannot be judged, or null. */
function thinLatency(f: StableFigures, value: number | null, label: string, minRequests: number, what: string): string | null {
  return thinRequests(f, minRequests, what) ?? (value === null ? `${what}: stable ${label} has no value${f.problems.length ? ` (${f.problems.join('; ')})` : ''}` : null);
}

function judgeErrorRate(m: ErrorRateMetric, base: StableFigures, now: StableFigures, minRequests: number): WatchResult[] {
  const nowThin = thin(now, minRequests, 'now');
  const results: WatchResult[] = [];
  const common = { metric: m.name, unit: 'ratio' as const, now: now.errorRate, baseline: base.errorRate };
  if (m.max !== undefined) {
    const check = `error rate ≤ ${pct(m.max)}`;
    if (nowThin || now.errorRate === null) results.push({ ...common, check, verdict: 'inconclusive', limit: m.max, reason: nowThin ?? 'no error rate' });
    else {
      const fail = now.errorRate > m.max + TIE;
      results.push({ ...common, check, verdict: fail ? 'fail' : 'pass', limit: m.max, reason: `stable's error rate ${pct(now.errorRate)} (${Math.round(now.errors ?? 0)} of ${Math.round(now.requests ?? 0).toLocaleString('en-US')} requests) is ${fail ? 'above' : 'within'} the ${pct(m.max)} limit` });
    }
  }
  if (m.maxIncrease !== undefined) {
    const check = `error rate ≤ baseline + ${pts(m.maxIncrease)}`;
    const baseThin = thin(base, minRequests, 'baseline before the rollout');
    const limit = base.errorRate === null ? null : base.errorRate + m.maxIncrease;
    if (nowThin || baseThin || now.errorRate === null || base.errorRate === null) {
      results.push({ ...common, check, verdict: 'inconclusive', limit, reason: nowThin ?? baseThin ?? 'no error rate' });
    } else {
      const diff = now.errorRate - base.errorRate;
      const fail = diff > m.maxIncrease + TIE;
      results.push({
        ...common,
        check,
        verdict: fail ? 'fail' : 'pass',
        limit,
        reason: `stable's error rate ${pct(now.errorRate)} vs ${pct(base.errorRate)} before the rollout: ${diff >= 0 ? '+' : '−'}${pts(Math.abs(diff))}, ${fail ? 'more than' : 'within'} the ${pts(m.maxIncrease)} allowed`,
      });
    }
  }
  return results;
}

function judgeLatency(m: LatencyMetric, base: StableFigures, now: StableFigures, minRequests: number): WatchResult[] {
  const label = quantileLabel(m.quantile);
  const valueOf = (f: StableFigures) => f.latency.find((l) => l.metric === m.name)?.seconds ?? null;
  const nowValue = valueOf(now);
  const baseValue = valueOf(base);
  const nowThin = thinLatency(now, nowValue, label, minRequests, 'now');
  const results: WatchResult[] = [];
  const common = { metric: m.name, unit: 'seconds' as const, now: nowValue, baseline: baseValue };
  if (m.max !== undefined) {
    const check = `${label} ≤ ${secs(m.max)}`;
    if (nowThin || nowValue === null) results.push({ ...common, check, verdict: 'inconclusive', limit: m.max, reason: nowThin ?? 'no value' });
    else {
      const fail = nowValue > m.max;
      results.push({ ...common, check, verdict: fail ? 'fail' : 'pass', limit: m.max, reason: `stable's ${label} ${secs(nowValue)} is ${fail ? 'above' : 'within'} the ${secs(m.max)} limit` });
    }
  }
  if (m.maxRatio !== undefined) {
    const check = `${label} ≤ ${m.maxRatio}× baseline`;
    const baseThin = thinLatency(base, baseValue, label, minRequests, 'baseline before the rollout');
    const limit = baseValue === null ? null : baseValue * m.maxRatio;
    if (nowThin || baseThin || nowValue === null || limit === null || baseValue === null) {
      results.push({ ...common, check, verdict: 'inconclusive', limit, reason: nowThin ?? baseThin ?? 'no value' });
    } else {
      const fail = nowValue > limit;
      const times = baseValue > 0 ? `${Number((nowValue / baseValue).toFixed(2))}×` : '∞×';
      results.push({ ...common, check, verdict: fail ? 'fail' : 'pass', limit, reason: `stable's ${label} ${secs(nowValue)} vs ${secs(baseValue)} before the rollout: ${times}, ${fail ? 'more than' : 'within'} the ${m.maxRatio}× allowed` });
    }
  }
  return results;
}

/**
 * One watch check: any breached limit fails it; otherwise any limit that could not be judged
 * (too little traffic now, or before the rollout, or no value) makes it inconclusive — which
 * never sets stable back; only when every limit holds does it pass.
 */
export function judgeWatch(metrics: readonly WatchMetric[], baseline: StableFigures, now: StableFigures, minRequests: number): WatchJudgement {
  const results = metrics.flatMap((m) => (m.type === 'error-rate' ? judgeErrorRate(m, baseline, now, minRequests) : judgeLatency(m, baseline, now, minRequests)));
  const verdict = results.some((r) => r.verdict === 'fail') ? 'fail' : results.some((r) => r.verdict === 'inconclusive') ? 'inconclusive' : 'pass';
  return { verdict, results };
}

/** "error rate 0.5% (12 of 2,400 requests) · P95 190ms", for logs and status. */
export function describeFigures(f: StableFigures): string {
  const n = f.requests === null ? 'no request count' : `${Math.round(f.errors ?? 0)} of ${Math.round(f.requests).toLocaleString('en-US')} requests`;
  const parts = [`error rate ${pct(f.errorRate)} (${n})`, ...f.latency.map((l) => `${quantileLabel(l.quantile)} ${secs(l.seconds)}`)];
  return parts.join(' · ');
}
