import type { MetricSpec, Policy } from '../policy/policy.js';
import { sequentialEvaluator } from './sequential-judges.js';
import { CanaryError } from '../errors.js';
import { CheckContext } from './check-context.js';
import { judgeErrorRateThreshold, observeErrorRate } from './error-rate.js';
import { judgeLatencyThreshold, observeLatency } from './latency.js';
import type { QueryTarget } from './promql-template.js';
import { evaluateQueryMetric } from './query-metric.js';
import type { CheckResult, CheckVerdict, MetricsSource } from './types.js';

/** Judges one metric at each check. Created once per rollout, so a judge may keep evidence across checks. */
export interface MetricEvaluator {
  readonly metric: MetricSpec;
  evaluate(ctx: CheckContext): Promise<CheckResult[]>;
}

function thresholdEvaluator(metric: MetricSpec): MetricEvaluator {
  return {
    metric,
    async evaluate(ctx) {
      switch (metric.type) {
        case 'error-rate':
          return judgeErrorRateThreshold(metric, await observeErrorRate(ctx), ctx);
        case 'latency':
          return judgeLatencyThreshold(metric, await observeLatency(ctx, metric), ctx);
        case 'query':
          return evaluateQueryMetric(metric, ctx);
      }
    },
  };
}

/**
 * A critical failure decides; then missing evidence (inconclusive), then evidence still being
 * gathered (pending); only when every critical result passes does the check pass.
 */
export function overallVerdict(results: readonly CheckResult[]): CheckVerdict {
  const critical = results.filter((r) => r.critical);
  for (const verdict of ['fail', 'inconclusive', 'pending'] as const) {
    if (critical.some((r) => r.verdict === verdict)) return verdict;
  }
  return 'pass';
}

/** An advisory metric whose query fails is reported as such; it must not end the rollout. */
async function advisory(evaluator: MetricEvaluator, ctx: CheckContext): Promise<CheckResult[]> {
  try {
    return await evaluator.evaluate(ctx);
  } catch (err) {
    if (!(err instanceof CanaryError)) throw err;
    const { metric } = evaluator;
    return [
      {
        metric: metric.name,
        check: `${metric.name} (reported)`,
        judge: 'report',
        critical: false,
        unit: metric.type === 'latency' ? 'seconds' : metric.type === 'query' ? (metric.unit ?? 'count') : 'ratio',
        canary: null,
        stable: null,
        threshold: null,
        verdict: 'info',
        reason: `not measured: ${err.message}`,
        queries: [],
      },
    ];
  }
}

export class Analyzer {
  private readonly evaluators: MetricEvaluator[];

  constructor(
    private readonly policy: Policy,
    private readonly target: QueryTarget,
    private readonly source: MetricsSource,
  ) {
    this.evaluators = policy.analysis.metrics.map((metric) => sequentialEvaluator(metric, policy) ?? thresholdEvaluator(metric));
  }

  async check(at: Date, weight: number, stepIndex: number): Promise<{ verdict: CheckVerdict; results: CheckResult[]; warnings: string[] }> {
    const ctx = new CheckContext(this.policy, this.target, this.source, at, weight, stepIndex);
    const perMetric = await Promise.all(this.evaluators.map((e) => (e.metric.critical ? e.evaluate(ctx) : advisory(e, ctx))));
    const results = perMetric.flat();
    return { verdict: overallVerdict(results), results, warnings: [...ctx.warnings] };
  }
}
