import { plannedChecks, type ErrorRateMetric, type LatencyMetric, type MetricSpec, type Policy } from '../policy/policy.js';
import type { MetricEvaluator } from './analyzer.js';
import type { CheckContext } from './check-context.js';
import { judgeErrorRateThreshold, observeErrorRate } from './error-rate.js';
import { noData, unusableCounts } from './traffic.js';
import { formatValue } from './format-value.js';
import { judgeLatencyThreshold, observeLatency, quantileLabel } from './latency.js';
import type { Side } from './promql-template.js';
import {
  chooseLatencyThreshold,
  createErrorRateJudge,
  createLatencyJudge,
  totalCount,
  type Bucket,
  type SequentialDecision,
} from './sequential/index.js';
import type { CheckResult, QueryResult } from './types.js';
import { formatDuration } from '../policy/units.js';

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
function plan(policy: Policy): { plannedSteps: number; plannedChecks: number } {
  return { plannedSteps: Math.max(1, policy.steps.length), plannedChecks: plannedChecks(policy) };
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
  };
}

function verdictOf(d: SequentialDecision): CheckResult['verdict'] {
  return d.decision === 'inconclusive' ? 'pending' : d.decision;
}

function noTraffic(ctx: CheckContext, side: Side, requests: number | null): string | null {
  if (requests !== null && requests > 0) return null;
  return requests === null ? noData(side, ctx.windowText) : `${side} served no requests in the last ${ctx.windowText}: nothing to judge`;
}

function errorRateEvaluator(metric: ErrorRateMetric, policy: Policy): MetricEvaluator {
  const margin = metric.maxIncrease ?? 0.03;
  const judge = createErrorRateJudge({
    margin,
    cap: metric.max ?? null,
    alpha: alphaShare(policy),
    beta: policy.analysis.sequential.beta,
    ...plan(policy),
  });
  const check = `error rate ≤ stable + ${Number((margin * 100).toFixed(2))} points${metric.max !== undefined ? ` and ≤ ${formatValue(metric.max, 'ratio')}` : ''} (sequential)`;
  return {
    metric,
    async evaluate(ctx) {
      const obs = await observeErrorRate(ctx);
      // At 100% stable serves nothing to compare with: only the absolute cap still applies.
      if (ctx.weight >= 100) return judgeErrorRateThreshold(metric, obs, ctx);
      const base = {
        metric: metric.name,
        check,
        judge: 'sequential' as const,
        critical: metric.critical,
        unit: 'ratio' as const,
        queries: [...obs.canary.queries, ...obs.stable.queries],
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
          threshold: d.stableRate + d.margin,
          verdict: verdictOf(d),
          reason: d.explanation,
          evidence: evidenceOf(d),
        },
      ];
    },
  };
}

function bucketsOf(result: QueryResult): Bucket[] {
  return result.samples
    .map((s) => ({ le: s.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels['le']), count: s.value }))
    .filter((b) => !Number.isNaN(b.le));
}

function latencyEvaluator(metric: LatencyMetric, policy: Policy): MetricEvaluator {
  let judge: ReturnType<typeof createLatencyJudge> | undefined;
  let thresholdNote = '';
  const buckets = async (ctx: CheckContext, side: Side, windowMs?: number) => {
    const query = ctx.render('latencyBuckets', side, windowMs === undefined ? {} : { windowMs });
    return { query, buckets: bucketsOf(await ctx.result(query)) };
  };

  /**
   * "Slow" means slower than stable's own P95 before the rollout (rounded up to a bucket
   * boundary), read once at the first check so every window is judged against the same line.
   */
  const ensureJudge = async (ctx: CheckContext) => {
    if (judge) return { judge, query: null };
    const baseline = await buckets(ctx, 'stable', policy.analysis.sequential.baselineMs);
    const chosen = chooseLatencyThreshold(baseline.buckets, metric.quantile);
    const threshold = chosen ?? metric.max ?? 1;
    thresholdNote =
      chosen === null
        ? `no stable latency in the ${formatDuration(policy.analysis.sequential.baselineMs)} before the first check; slow means over ${formatValue(threshold, 'seconds')}`
        : `slow means over ${formatValue(threshold, 'seconds')}, stable's ${quantileLabel(metric.quantile)} before the rollout rounded up to a bucket boundary`;
    judge = createLatencyJudge({
      threshold,
      ratio: metric.maxRatio ?? 1.5,
      ...(metric.max !== undefined && { limit: metric.max }),
      quantile: metric.quantile,
      alpha: alphaShare(policy),
      beta: policy.analysis.sequential.beta,
      ...plan(policy),
    });
    return { judge, query: baseline.query };
  };

  return {
    metric,
    async evaluate(ctx) {
      if (ctx.weight >= 100) return judgeLatencyThreshold(metric, await observeLatency(ctx, metric), ctx);
      const [{ judge: j, query: baselineQuery }, canary, stable] = await Promise.all([
        ensureJudge(ctx),
        buckets(ctx, 'canary'),
        buckets(ctx, 'stable'),
      ]);
      const queries = [canary.query, stable.query, ...(baselineQuery ? [baselineQuery] : [])];
      const idle =
        noTraffic(ctx, 'canary', canary.buckets.length ? totalCount(canary.buckets) : null) ??
        noTraffic(ctx, 'stable', stable.buckets.length ? totalCount(stable.buckets) : null);
      if (idle) {
        return [
          {
            metric: metric.name,
            check: `${quantileLabel(metric.quantile)} (sequential)`,
            judge: 'sequential',
            critical: metric.critical,
            unit: 'ratio',
            queries,
            canary: null,
            stable: null,
            threshold: null,
            verdict: 'inconclusive',
            reason: idle,
          },
        ];
      }
      const d = j.observe({
        canary: { buckets: canary.buckets },
        stable: { buckets: stable.buckets },
        step: ctx.stepIndex,
        startedAt: windowStart(ctx),
      });
      const base = {
        metric: metric.name,
        check: `requests slower than ${formatValue(d.threshold, 'seconds')} ≤ ${metric.maxRatio ?? 1.5}× stable's share (sequential)`,
        judge: 'sequential' as const,
        critical: metric.critical,
        unit: 'ratio' as const,
        queries,
      };
      // What "slow" means is said where it matters: on the first check and on a rollback.
      const verdict = verdictOf(d);
      const note = baselineQuery || verdict === 'fail' ? ` (${thresholdNote})` : '';
      return [
        {
          ...base,
          canary: d.canaryRate,
          stable: d.stableRate,
          threshold: d.stableRate * (metric.maxRatio ?? 1.5),
          verdict,
          reason: `${d.explanation}${note}`,
          evidence: {
            ...evidenceOf(d),
            slowThresholdSeconds: d.threshold,
            canaryP: Number.isFinite(d.canaryQuantile) ? d.canaryQuantile : null,
            stableP: Number.isFinite(d.stableQuantile) ? d.stableQuantile : null,
          },
        },
      ];
    },
  };
}

/** The evaluator for a metric whose policy asks for the sequential judge, if any. */
export function sequentialEvaluator(metric: MetricSpec, policy: Policy): MetricEvaluator | undefined {
  if (metric.judge !== 'sequential') return undefined;
  if (metric.type === 'error-rate') return errorRateEvaluator(metric, policy);
  if (metric.type === 'latency') return latencyEvaluator(metric, policy);
  return undefined;
}
