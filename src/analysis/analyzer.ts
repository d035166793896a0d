import type { MetricSpec, Policy } from '../policy/policy.js';
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

export type EvaluatorFactory = (metric: MetricSpec, policy: Policy) => MetricEvaluator | undefined;

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

/** A critical failure decides; otherwise a critical inconclusive result keeps the check open. */
export function overallVerdict(results: readonly CheckResult[]): CheckVerdict {
  const critical = results.filter((r) => r.critical);
  if (critical.some((r) => r.verdict === 'fail')) return 'fail';
  if (critical.some((r) => r.verdict === 'inconclusive')) return 'inconclusive';
  return 'pass';
}

export class Analyzer {
  private readonly evaluators: MetricEvaluator[];

  constructor(
    private readonly policy: Policy,
    private readonly target: QueryTarget,
    private readonly source: MetricsSource,
    extraJudges: EvaluatorFactory[] = [],
  ) {
    this.evaluators = policy.analysis.metrics.map(
      (metric) => extraJudges.map((make) => make(metric, policy)).find((e) => e !== undefined) ?? thresholdEvaluator(metric),
    );
  }

  async check(at: Date, weight: number): Promise<{ verdict: CheckVerdict; results: CheckResult[] }> {
    const ctx = new CheckContext(this.policy, this.target, this.source, at, weight);
    const perMetric = await Promise.all(this.evaluators.map((e) => e.evaluate(ctx)));
    const results = perMetric.flat();
    return { verdict: overallVerdict(results), results };
  }
}
