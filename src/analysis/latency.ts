import type { LatencyMetric } from '../policy/policy.js';
import type { CheckContext } from './check-context.js';
import { formatValue } from './format-value.js';
import type { Side } from './promql-template.js';
import { observeTraffic, tooLittleTraffic, type SideTraffic } from './traffic.js';
import type { CheckResult } from './types.js';

export interface SideLatency {
  traffic: SideTraffic;
  quantile: number | null;
  missing?: string;
  query: string;
}

export interface LatencyObservation {
  canary: SideLatency;
  stable: SideLatency;
}

async function observeSide(ctx: CheckContext, metric: LatencyMetric, side: Side): Promise<SideLatency> {
  const query = ctx.render('latency', side, { quantile: metric.quantile });
  const [traffic, value] = await Promise.all([observeTraffic(ctx, side), ctx.value(query)]);
  return value.ok
    ? { traffic, quantile: value.value, query }
    : { traffic, quantile: null, missing: value.detail, query };
}

export async function observeLatency(ctx: CheckContext, metric: LatencyMetric): Promise<LatencyObservation> {
  const [canary, stable] = await Promise.all([observeSide(ctx, metric, 'canary'), observeSide(ctx, metric, 'stable')]);
  return { canary, stable };
}

const secs = (v: number | null) => formatValue(v, 'seconds');

export function quantileLabel(q: number): string {
  return `P${Number((q * 100).toFixed(1))}`;
}

export function judgeLatencyThreshold(metric: LatencyMetric, obs: LatencyObservation, ctx: CheckContext): CheckResult[] {
  const label = quantileLabel(metric.quantile);
  const base = {
    metric: metric.name,
    judge: 'threshold' as const,
    critical: metric.critical,
    unit: 'seconds' as const,
    canary: obs.canary.quantile,
    stable: obs.stable.quantile,
    queries: [obs.canary.query, obs.stable.query, obs.canary.traffic.queries[0] ?? '', obs.stable.traffic.queries[0] ?? ''],
    evidence: { canaryRequests: obs.canary.traffic.requests, stableRequests: obs.stable.traffic.requests },
  };
  const canaryProblem =
    tooLittleTraffic('canary', obs.canary.traffic, ctx) ?? (obs.canary.quantile === null ? `canary ${label}: ${obs.canary.missing}` : null);
  const results: CheckResult[] = [];
  // Both checks need the canary's latency: when it is missing, say so once, not once per check.
  if (canaryProblem && metric.max !== undefined && metric.maxRatio !== undefined && ctx.weight < 100) {
    return [{ ...base, check: `${label} ≤ ${secs(metric.max)} and ≤ ${metric.maxRatio}× stable`, threshold: metric.max, verdict: 'inconclusive', reason: canaryProblem }];
  }

  if (metric.max !== undefined) {
    const max = metric.max;
    const check = `${label} ≤ ${secs(max)}`;
    if (canaryProblem || obs.canary.quantile === null) {
      results.push({ ...base, check, threshold: max, verdict: 'inconclusive', reason: canaryProblem ?? 'no canary data' });
    } else {
      const fail = obs.canary.quantile > max;
      results.push({
        ...base,
        check,
        threshold: max,
        verdict: fail ? 'fail' : 'pass',
        reason: `canary ${label} ${secs(obs.canary.quantile)} is ${fail ? 'above' : 'within'} the ${secs(max)} limit`,
      });
    }
  }

  if (metric.maxRatio !== undefined) {
    const ratio = metric.maxRatio;
    const check = `${label} ≤ ${ratio}× stable`;
    const stableProblem =
      tooLittleTraffic('stable', obs.stable.traffic, ctx) ?? (obs.stable.quantile === null ? `stable ${label}: ${obs.stable.missing}` : null);
    const limit = obs.stable.quantile === null ? null : obs.stable.quantile * ratio;
    if (ctx.weight >= 100) {
      results.push({ ...base, check, threshold: null, verdict: 'info', reason: 'not compared at 100%: stable serves no traffic' });
    } else if (canaryProblem || stableProblem || obs.canary.quantile === null || limit === null) {
      results.push({ ...base, check, threshold: limit, verdict: 'inconclusive', reason: canaryProblem ?? stableProblem ?? 'no data to compare' });
    } else {
      const fail = obs.canary.quantile > limit;
      const times = obs.stable.quantile ? obs.canary.quantile / obs.stable.quantile : Number.POSITIVE_INFINITY;
      // Enough digits that the ratio shown is on the side of the limit it is on ("1.503×", never "1.5×, more than the 1.5×").
      let digits = 2;
      while (digits < 6 && Number(times.toFixed(digits)) === ratio && times !== ratio) digits++;
      results.push({
        ...base,
        check,
        threshold: limit,
        verdict: fail ? 'fail' : 'pass',
        reason: `canary ${label} ${secs(obs.canary.quantile)} vs stable ${secs(obs.stable.quantile)}: ${Number.isFinite(times) ? Number(times.toFixed(digits)) : '∞'}× stable, ${fail ? 'more than' : 'within'} the ${ratio}× allowed`,
      });
    }
  }
  return results;
}
