import { plannedChecks, type ErrorRateMetric, type LatencyMetric, type MetricSpec, type Policy } from '../policy/policy.js';
import type { MetricEvaluator } from './evaluator.js';
import type { CheckContext } from './check-context.js';
import { judgeErrorRateThreshold, observeErrorRate } from './error-rate.js';
import { countingGap, noData, unusableCounts } from './traffic.js';
import { formatValue } from './format-value.js';
import { judgeLatencyThreshold, observeLatency, quantileLabel } from './latency.js';
import type { Side } from './promql-template.js';
import {
  createErrorRateJudge,
  createLatencyJudge,
  dispersionFromBaseline,
  totalCount,
  type Bucket,
  type DispersionState,
  type ErrorRateJudgeState,
  type ErrorRateWindow,
  type LatencyDecision,
  type LatencyJudgeState,
  type LatencyWindow,
  type SequentialDecision,
  type SequentialJudge,
} from './sequential/index.js';
import type { CheckResult, QueryResult } from './types.js';
import { promDuration } from '../policy/units.js';
import { CanaryError } from '../errors.js';

// Adapters from the engine's checks to the sequential judges in ./sequential: they gather the
// window's counts, feed the judge (which keeps its evidence for the whole rollout) and turn its
// decision into a check result with the numbers and the plain-words explanation.

/**
 * Each sequential metric gets an equal share of the policy's alpha (Bonferroni), so the chance
 * of rolling back a canary that is no worse than stable stays within alpha for the rollout.
 */
function alphaShare(policy: Policy): number {
  const n = policy.analysis.metrics.filter((m) => m.critical && m.judge === 'sequential').length;
  return policy.analysis.sequential.alpha / Math.max(1, n);
}

/**
 * The rollout's plan, for where the judges put their prior weight on change points: planned step
 * starts, and every check over the planned number of checks.
 */
function plan(policy: Policy): { plannedSteps: number; plannedChecks: number; stepChecks: number[] } {
  const stepChecks = policy.steps.map((s) => Math.max(1, Math.floor(s.durationMs / policy.intervalMs)));
  return { plannedSteps: Math.max(1, policy.steps.length), plannedChecks: plannedChecks(policy), stepChecks };
}

/** When a check's counts begin, so explanations can say "since 10:21 UTC". */
function windowStart(ctx: CheckContext): Date {
  return new Date(ctx.at.getTime() - ctx.policy.analysis.windowMs);
}

function evidenceOf(d: SequentialDecision): Record<string, number | null> {
  return {
    estimate: d.difference.estimate,
    lower: d.difference.lower,
    upper: d.difference.upper,
    margin: d.margin,
    confidence: d.confidence,
    evidenceRatio: Number.isFinite(d.evidence) ? d.evidence : null,
    canaryRequests: d.canaryRequests,
    canaryEvents: d.canaryEvents,
    stableRequests: d.stableRequests,
    stableEvents: d.stableEvents,
    moreRequestsNeeded: d.moreRequestsNeeded ?? null,
    dispersion: d.dispersion,
  };
}

function verdictOf(d: SequentialDecision): CheckResult['verdict'] {
  return d.decision === 'inconclusive' ? 'pending' : d.decision;
}

function noTraffic(ctx: CheckContext, side: Side, requests: number | null): string | null {
  if (requests !== null && requests > 0) return null;
  return requests === null ? noData(side, ctx.windowText) : `${side} served no requests in the last ${ctx.windowText}: nothing to judge`;
}

/**
 * Stable's window-to-window variation over the baseline look-back before this check, as Prometheus
 * computes it over a subquery of the policy's own requests and errors queries: the moments the
 * error judge's dispersion starts from. Null when Prometheus has too little to say.
 */
async function baselineDispersion(ctx: CheckContext): Promise<{ state: DispersionState | null; queries: string[] }> {
  const requests = ctx.render('requests', 'stable');
  const errors = ctx.render('errors', 'stable');
  const range = `[${promDuration(ctx.policy.analysis.sequential.baselineMs)}:${promDuration(ctx.policy.analysis.windowMs)}]`;
  const ratio = `((${errors}) / ((${requests}) > 0))${range}`;
  const queries = [`avg_over_time(${ratio})`, `stddev_over_time(${ratio})`, `avg_over_time((1 / ((${requests}) > 0))${range})`, `count_over_time(((${requests}) > 0)${range})`];
  try {
    const values = await Promise.all(queries.map((q) => ctx.value(q)));
    const [mean, sd, inverse, windows] = values.map((v) => (v.ok && Number.isFinite(v.value) ? v.value : null));
    if (mean == null || sd == null || inverse == null || windows == null || windows < 3) return { state: null, queries };
    return { state: dispersionFromBaseline({ meanRate: mean, sdRate: sd, meanInverseRequests: inverse, windows }), queries };
  } catch (err) {
    // The baseline only sharpens the start; without it the judge learns from the rollout's windows.
    if (err instanceof CanaryError) return { state: null, queries };
    throw err;
  }
}

function errorRateEvaluator(metric: ErrorRateMetric, policy: Policy): MetricEvaluator {
  const margin = metric.maxIncrease ?? 0.03;
  const config = {
    margin,
    cap: metric.max ?? null,
    alpha: alphaShare(policy),
    beta: policy.analysis.sequential.beta,
    minRequests: policy.analysis.minRequests,
    ...plan(policy),
  };
  let judge: SequentialJudge<ErrorRateWindow> | undefined;
  let restored: ErrorRateJudgeState | undefined;
  const check = `error rate ≤ stable + ${Number((margin * 100).toFixed(2))} points${metric.max !== undefined ? ` and ≤ ${formatValue(metric.max, 'ratio')}` : ''} (sequential)`;
  return {
    metric,
    snapshot: () => judge?.snapshot() ?? restored ?? null,
    restore(state) {
      restored = isRecord(state) ? (state as unknown as ErrorRateJudgeState) : undefined;
      judge = undefined;
    },
    async evaluate(ctx) {
      const obs = await observeErrorRate(ctx);
      // At 100% stable serves nothing to compare with: only the absolute cap still applies.
      if (ctx.weight >= 100) return judgeErrorRateThreshold(metric, obs, ctx);
      let baselineQueries: string[] = [];
      if (!judge) {
        if (restored) judge = createErrorRateJudge(config, { state: restored });
        else {
          const baseline = await baselineDispersion(ctx);
          baselineQueries = baseline.queries;
          judge = createErrorRateJudge(config, baseline.state ? { dispersion: baseline.state } : {});
        }
      }
      const base = {
        metric: metric.name,
        check,
        judge: 'sequential' as const,
        critical: metric.critical,
        unit: 'ratio' as const,
        queries: [...obs.canary.queries, ...obs.stable.queries, ...baselineQueries],
      };
      // Both sides must have usable counts: a missing stable side or error count is no evidence.
      const unusable = unusableCounts('canary', obs.canary, ctx) ?? unusableCounts('stable', obs.stable, ctx);
      if (unusable) return [{ ...base, canary: null, stable: null, threshold: null, verdict: 'inconclusive', reason: unusable }];
      const d = judge.observe({
        canary: { requests: obs.canary.requests ?? 0, errors: obs.canary.errors ?? 0 },
        stable: { requests: obs.stable.requests ?? 0, errors: obs.stable.errors ?? 0 },
        step: ctx.stepIndex,
        startedAt: windowStart(ctx),
      });
      return [
        {
          ...base,
          canary: d.canaryRate,
          stable: d.stableRate,
          threshold: metric.max === undefined ? d.stableRate + d.margin : Math.min(metric.max, d.stableRate + d.margin),
          verdict: verdictOf(d),
          reason: d.explanation,
          evidence: evidenceOf(d),
          ...(d.adverse && d.decision !== 'fail' ? { adverse: d.adverse } : {}),
          ...(d.holding && d.decision !== 'fail' ? { holding: d.holding } : {}),
        },
      ];
    },
  };
}

/** Bucket bounds in seconds: `perSecond` is the preset's, for histograms in other units (Envoy: ms, 1000). */
function bucketsOf(result: QueryResult, perSecond = 1): Bucket[] {
  return result.samples
    .map((s) => ({ le: s.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels['le']) / perSecond, count: s.value }))
    .filter((b) => !Number.isNaN(b.le));
}

function latencyEvaluator(metric: LatencyMetric, policy: Policy): MetricEvaluator {
  let judge: SequentialJudge<LatencyWindow, LatencyDecision> | undefined;
  let restored: LatencyJudgeState | undefined;
  const ratio = metric.maxRatio ?? 1.5;
  const label = quantileLabel(metric.quantile);
  const check = `${label} ≤ ${ratio}× stable's${metric.max !== undefined ? ` and ≤ ${formatValue(metric.max, 'seconds')}` : ''} (sequential)`;
  const buckets = async (ctx: CheckContext, side: Side, windowMs?: number) => {
    const query = ctx.render('latencyBuckets', side, windowMs === undefined ? {} : { windowMs });
    return { query, buckets: bucketsOf(await ctx.result(query), policy.analysis.latencyBucketsPerSecond) };
  };
  const config = (baseline: Bucket[]) => ({
    ratio,
    ...(metric.max !== undefined && { limit: metric.max }),
    quantile: metric.quantile,
    alpha: alphaShare(policy),
    beta: policy.analysis.sequential.beta,
    minRequests: policy.analysis.minRequests,
    baseline,
    ...plan(policy),
  });

  /** Stable's quantile before the rollout stands in for its own until the rollout has enough stable requests. */
  const ensureJudge = async (ctx: CheckContext) => {
    if (judge) return { judge, query: null };
    if (restored) {
      judge = createLatencyJudge(config([]), { state: restored });
      return { judge, query: null };
    }
    const baseline = await buckets(ctx, 'stable', policy.analysis.sequential.baselineMs);
    judge = createLatencyJudge(config(baseline.buckets));
    return { judge, query: baseline.query };
  };

  return {
    metric,
    snapshot: () => judge?.snapshot() ?? restored ?? null,
    restore(state) {
      restored = isRecord(state) ? (state as unknown as LatencyJudgeState) : undefined;
      judge = undefined;
    },
    async evaluate(ctx) {
      if (ctx.weight >= 100) return judgeLatencyThreshold(metric, await observeLatency(ctx, metric), ctx);
      const [{ judge: j, query: baselineQuery }, canary, stable] = await Promise.all([
        ensureJudge(ctx),
        buckets(ctx, 'canary'),
        buckets(ctx, 'stable'),
      ]);
      const queries = [canary.query, stable.query, ...(baselineQuery ? [baselineQuery] : [])];
      const base = {
        metric: metric.name,
        check,
        judge: 'sequential' as const,
        critical: metric.critical,
        unit: 'seconds' as const,
        queries,
      };
      // A bucket count of NaN: a counter with a gap at the window's start (see presets.ts).
      const gap = async (side: Side, b: Bucket[]) =>
        b.some((x) => Number.isNaN(x.count)) ? `${side} ${(await countingGap(ctx, side)) ?? 'request count: NaN'}` : null;
      const gapped = (await gap('canary', canary.buckets)) ?? (await gap('stable', stable.buckets));
      if (gapped) return [{ ...base, canary: null, stable: null, threshold: null, verdict: 'inconclusive', reason: gapped }];
      const idle =
        noTraffic(ctx, 'canary', canary.buckets.length ? totalCount(canary.buckets) : null) ??
        noTraffic(ctx, 'stable', stable.buckets.length ? totalCount(stable.buckets) : null);
      if (idle) return [{ ...base, canary: null, stable: null, threshold: null, verdict: 'inconclusive', reason: idle }];
      const d = j.observe({
        canary: { buckets: canary.buckets },
        stable: { buckets: stable.buckets },
        step: ctx.stepIndex,
        startedAt: windowStart(ctx),
      });
      const finite = (v: number) => (Number.isFinite(v) ? v : null);
      return [
        {
          ...base,
          canary: finite(d.canaryQuantile),
          stable: finite(d.stableQuantile),
          threshold: finite(d.limitSeconds),
          verdict: verdictOf(d),
          reason: d.explanation,
          evidence: { ...evidenceOf(d), canaryP: finite(d.canaryQuantile), stableP: finite(d.stableQuantile), limitSeconds: finite(d.limitSeconds) },
          ...(d.adverse && d.decision !== 'fail' ? { adverse: d.adverse } : {}),
          ...(d.holding && d.decision !== 'fail' ? { holding: d.holding } : {}),
        },
      ];
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The evaluator for a metric whose policy asks for the sequential judge, if any. */
export function sequentialEvaluator(metric: MetricSpec, policy: Policy): MetricEvaluator | undefined {
  if (metric.judge !== 'sequential') return undefined;
  if (metric.type === 'error-rate') return errorRateEvaluator(metric, policy);
  if (metric.type === 'latency') return latencyEvaluator(metric, policy);
  return undefined;
}
