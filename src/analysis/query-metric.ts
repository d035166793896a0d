import type { QueryMetric } from '../policy/policy.js';
import type { CheckContext } from './check-context.js';
import { formatValue } from './format-value.js';
import type { CheckResult, Unit } from './types.js';

/** A free-form metric (memory, CPU, anything in PromQL) read for both sides and held to optional limits. */
export async function evaluateQueryMetric(metric: QueryMetric, ctx: CheckContext): Promise<CheckResult[]> {
  const canaryQuery = ctx.render(metric.query, 'canary');
  const stableQuery = ctx.render(metric.query, 'stable');
  const [canary, stable] = await Promise.all([ctx.value(canaryQuery), ctx.value(stableQuery)]);
  const unit: Unit = metric.unit ?? 'count';
  const fmt = (v: number | null) => formatValue(v, unit);
  const base = {
    metric: metric.name,
    judge: metric.critical ? ('threshold' as const) : ('report' as const),
    critical: metric.critical,
    unit,
    canary: canary.ok ? canary.value : null,
    stable: stable.ok ? stable.value : null,
    queries: [canaryQuery, stableQuery],
  };
  const missing = canary.ok ? null : `canary: ${canary.detail}`;
  const results: CheckResult[] = [];

  if (metric.max === undefined && metric.maxRatio === undefined) {
    results.push({
      ...base,
      check: `${metric.name} (reported)`,
      threshold: null,
      verdict: 'info',
      reason: missing ?? `canary ${fmt(base.canary)}, stable ${fmt(base.stable)}`,
    });
    return results;
  }
  if (metric.max !== undefined) {
    const max = metric.max;
    const check = `${metric.name} ≤ ${fmt(max)}`;
    if (base.canary === null) {
      results.push({ ...base, check, threshold: max, verdict: 'inconclusive', reason: missing ?? 'no data' });
    } else {
      const fail = base.canary > max;
      results.push({ ...base, check, threshold: max, verdict: fail ? 'fail' : 'pass', reason: `canary ${fmt(base.canary)} is ${fail ? 'above' : 'within'} the ${fmt(max)} limit` });
    }
  }
  if (metric.maxRatio !== undefined) {
    const ratio = metric.maxRatio;
    const check = `${metric.name} ≤ ${ratio}× stable`;
    const limit = base.stable === null ? null : base.stable * ratio;
    if (base.canary === null || limit === null) {
      results.push({ ...base, check, threshold: limit, verdict: 'inconclusive', reason: missing ?? `stable: ${stable.ok ? '' : stable.detail}` });
    } else {
      const fail = base.canary > limit;
      results.push({ ...base, check, threshold: limit, verdict: fail ? 'fail' : 'pass', reason: `canary ${fmt(base.canary)} vs stable ${fmt(base.stable)}: ${fail ? 'more than' : 'within'} ${ratio}× stable` });
    }
  }
  return results;
}
