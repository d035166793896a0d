import type { MetricSpec, Policy } from '../policy/policy.js';
import { sequentialEvaluator } from './sequential-judges.js';
import { CanaryError, invalidInput } from '../errors.js';
import { CheckContext } from './check-context.js';
import { judgeErrorRateThreshold, observeErrorRate } from './error-rate.js';
import { judgeLatencyThreshold, observeLatency } from './latency.js';
import type { QueryTarget } from './promql-template.js';
import { requestDataMissing } from './traffic.js';
import { evaluateQueryMetric } from './query-metric.js';
import type { CheckResult, CheckVerdict, MetricsSource } from './types.js';
import type { MetricEvaluator } from './evaluator.js';

export type { MetricEvaluator } from './evaluator.js';


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

  /** The sequential judges' evidence so far, per metric, as JSON-safe data for the rollout record. */
  snapshot(): Record<string, unknown> {
    const state: Record<string, unknown> = {};
    for (const e of this.evaluators) {
      const s = e.snapshot?.();
      if (s !== undefined && s !== null) state[e.metric.name] = s;
    }
    return state;
  }

  /** Continues the evidence a snapshot() holds (a resumed rollout): metrics not in it start afresh. */
  restore(state: Record<string, unknown>): void {
    for (const e of this.evaluators) {
      if (state[e.metric.name] !== undefined) e.restore?.(state[e.metric.name]);
    }
  }

  async check(at: Date, weight: number, stepIndex: number): Promise<{ verdict: CheckVerdict; results: CheckResult[]; warnings: string[] }> {
    const ctx = new CheckContext(this.policy, this.target, this.source, at, weight, stepIndex);
    // Nothing at all on either side means the queries look in the wrong place (target,
    // namespace, time): that is not a dead canary, so it stops the run with exit 2.
    const missing = await requestDataMissing(ctx);
    if (missing) throw invalidInput(missing);
    const perMetric = await Promise.all(this.evaluators.map((e) => (e.metric.critical ? e.evaluate(ctx) : advisory(e, ctx))));
    const results = perMetric.flat();
    return { verdict: overallVerdict(results), results, warnings: [...ctx.warnings] };
  }
}
