import type { ErrorRateMetric } from '../policy/policy.js';
import type { CheckContext } from './check-context.js';
import { formatValue } from './format-value.js';
import { observeTraffic, tooLittleTraffic, unusableCounts, type SideTraffic } from './traffic.js';
import type { CheckResult } from './types.js';

export interface ErrorRateObservation {
  canary: SideTraffic;
  stable: SideTraffic;
}

export async function observeErrorRate(ctx: CheckContext): Promise<ErrorRateObservation> {
  const [canary, stable] = await Promise.all([observeTraffic(ctx, 'canary'), observeTraffic(ctx, 'stable')]);
  return { canary, stable };
}

export function errorRatio(side: SideTraffic): number | null {
  if (side.requests === null || side.requests <= 0 || side.errors === null) return null;
  // increase() extrapolates, so errors can exceed requests by a hair on tiny windows.
  return Math.min(1, Math.max(0, side.errors / side.requests));
}

/** Rounding of rates and sums of rates: a canary exactly at a limit is within it. */
const TIE = 1e-12;
const pct = (v: number | null) => formatValue(v, 'ratio');
const points = (v: number, digits = 2) => `${Number((v * 100).toFixed(digits))} point${v === 0.01 ? '' : 's'}`;

/** A difference printed with enough digits to show which side of the limit it is on. */
function pointsBeside(v: number, limit: number): string {
  let digits = 2;
  while (digits < 6 && Number((v * 100).toFixed(digits)) === Number((limit * 100).toFixed(digits)) && v !== limit) digits++;
  return points(v, digits);
}

/** Fixed thresholds on the window's ratio: what Flagger and Argo do, with thin traffic kept inconclusive. */
export function judgeErrorRateThreshold(
  metric: ErrorRateMetric,
  obs: ErrorRateObservation,
  ctx: CheckContext,
): CheckResult[] {
  const canaryRate = errorRatio(obs.canary);
  const stableRate = errorRatio(obs.stable);
  const evidence = {
    canaryRequests: obs.canary.requests,
    canaryErrors: obs.canary.errors,
    stableRequests: obs.stable.requests,
    stableErrors: obs.stable.errors,
  };
  const base = {
    metric: metric.name,
    judge: 'threshold' as const,
    critical: metric.critical,
    unit: 'ratio' as const,
    canary: canaryRate,
    stable: stableRate,
    queries: [...obs.canary.queries, ...obs.stable.queries],
    evidence,
  };
  const canaryThin = tooLittleTraffic('canary', obs.canary, ctx) ?? unusableCounts('canary', obs.canary, ctx);
  const results: CheckResult[] = [];
  // Both checks need the canary's traffic: when it is too thin, say so once, not once per check.
  if ((canaryThin || canaryRate === null) && metric.max !== undefined && metric.maxIncrease !== undefined && ctx.weight < 100) {
    return [
      {
        ...base,
        check: `error rate ≤ ${pct(metric.max)} and ≤ stable + ${points(metric.maxIncrease)}`,
        threshold: metric.max,
        verdict: 'inconclusive',
        reason: canaryThin ?? 'no canary requests',
      },
    ];
  }

  if (metric.max !== undefined) {
    const max = metric.max;
    const check = `error rate ≤ ${pct(max)}`;
    if (canaryThin || canaryRate === null) {
      results.push({ ...base, check, threshold: max, verdict: 'inconclusive', reason: canaryThin ?? 'no canary requests' });
    } else {
      const fail = canaryRate > max + TIE;
      results.push({
        ...base,
        check,
        threshold: max,
        verdict: fail ? 'fail' : 'pass',
        reason: fail
          ? `canary error rate ${pct(canaryRate)} is above the ${pct(max)} limit (${Math.round(obs.canary.errors ?? 0)} of ${Math.round(obs.canary.requests ?? 0)} requests failed)`
          : `canary error rate ${pct(canaryRate)} is within the ${pct(max)} limit`,
      });
    }
  }

  if (metric.maxIncrease !== undefined) {
    const inc = metric.maxIncrease;
    const check = `error rate ≤ stable + ${points(inc)}`;
    const stableThin = tooLittleTraffic('stable', obs.stable, ctx) ?? unusableCounts('stable', obs.stable, ctx);
    const limit = stableRate === null ? null : stableRate + inc;
    if (ctx.weight >= 100) {
      results.push({ ...base, check, threshold: null, verdict: 'info', reason: 'not compared at 100%: stable serves no traffic' });
    } else if (canaryThin || stableThin || canaryRate === null || limit === null) {
      results.push({ ...base, check, threshold: limit, verdict: 'inconclusive', reason: canaryThin ?? stableThin ?? 'no requests to compare' });
    } else {
      const diff = canaryRate - (stableRate ?? 0);
      // On the difference, not on stable + limit: 3.5% vs 0.5% is +3 points, not above 0.5% + 3% in floating point.
      const fail = diff > inc + TIE;
      results.push({
        ...base,
        check,
        threshold: limit,
        verdict: fail ? 'fail' : 'pass',
        reason: fail
          ? `canary ${pct(canaryRate)} vs stable ${pct(stableRate)}: ${pointsBeside(diff, inc)} above stable, more than the ${points(inc)} allowed`
          : `canary ${pct(canaryRate)} vs stable ${pct(stableRate)}: within ${points(inc)} of stable`,
      });
    }
  }
  return results;
}
