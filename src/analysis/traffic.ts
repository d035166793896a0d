import type { Side } from './promql-template.js';
import type { CheckContext } from './check-context.js';

export interface SideTraffic {
  /** Requests in the window; null when Prometheus had no data at all. */
  requests: number | null;
  errors: number | null;
  queries: string[];
  /** Why a count is missing (empty, NaN, several series), in Prometheus's terms. */
  problem: string | null;
}

/** Request and 5xx counts for one side over the analysis window. */
export async function observeTraffic(ctx: CheckContext, side: Side): Promise<SideTraffic> {
  const requestsQuery = ctx.render('requests', side);
  const errorsQuery = ctx.render('errors', side);
  const [requests, errors] = await Promise.all([ctx.value(requestsQuery), ctx.value(errorsQuery)]);
  // An empty request count is plain "no traffic"; anything else (NaN, several series, a missing
  // error count) is a query problem worth naming.
  const gap = !requests.ok && requests.why === 'nan' ? await countingGap(ctx, side) : null;
  const problem =
    gap ?? (!requests.ok && requests.why !== 'empty' ? `request count: ${requests.detail}` : !errors.ok ? `error count: ${errors.detail}` : null);
  return {
    requests: requests.ok ? requests.value : null,
    errors: errors.ok ? errors.value : null,
    queries: [requestsQuery, errorsQuery],
    problem,
  };
}

/**
 * Why the window cannot be counted, when the preset's count came back NaN because a counter has a
 * gap at the window's start (failed scrapes; the series was stale), or null. Its rise from its
 * last real sample would include the requests of the gap, so the window is inconclusive.
 */
export async function countingGap(ctx: CheckContext, side: Side): Promise<string | null> {
  if (ctx.policy.analysis.queries['countingGaps'] === undefined) return null;
  const answer = await ctx.value(ctx.render('countingGaps', side));
  if (!answer.ok || !(answer.value > 0)) return null;
  const n = Math.round(answer.value);
  return (
    `request count: ${n} counter series ${n === 1 ? 'has' : 'have'} no sample at the start of the last ${ctx.windowText} ` +
    `(failed scrapes: Prometheus marked ${n === 1 ? 'it' : 'them'} stale) but ${n === 1 ? 'has' : 'have'} samples again now; ` +
    `counting from the last sample before the gap would count requests from before the window, so this window is not counted`
  );
}

/**
 * Why one side's counts cannot be used at all, or null. A missing error count is never read as
 * zero errors: that would pass a canary whose error query is broken.
 */
export function unusableCounts(side: Side, traffic: SideTraffic, ctx: CheckContext): string | null {
  if (traffic.requests === null) return traffic.problem ? `${side} ${traffic.problem}` : noData(side, ctx.windowText);
  if (traffic.requests <= 0) return `${side} served no requests in the last ${ctx.windowText}: nothing to judge`;
  if (traffic.errors === null) return `${side} ${traffic.problem ?? 'error count: no data'}`;
  return null;
}

/**
 * An empty answer means no requests, or a window too short for the scrape interval (increase()
 * needs two samples in it): say both, since only the operator can tell which.
 */
export function noData(side: Side, windowText: string): string {
  return `${side} has no data for the last ${windowText}: no requests, or fewer than two scrapes in the window (scrape more often or widen the window)`;
}

/** Why a side's traffic is too thin to judge, or null when there is enough. */
export function tooLittleTraffic(side: Side, traffic: SideTraffic, ctx: CheckContext): string | null {
  const n = traffic.requests;
  if (n !== null && n >= ctx.minRequests) return null;
  if (n === null) return noData(side, ctx.windowText);
  const served = `${Math.round(n)} request${Math.round(n) === 1 ? '' : 's'}`;
  return `${side} served ${served} in the last ${ctx.windowText}; at least ${ctx.minRequests} are needed to judge`;
}

/**
 * Why there is no data at all, or null: the requests query returned no series for stable nor for
 * the canary (no series, not zero requests), which means a mistyped target, the wrong namespace,
 * a time before Prometheus has data, or a scrape that is not set up — never a dead canary, since
 * stable would still show. Names the query, the namespace and the time.
 */
export async function requestDataMissing(ctx: CheckContext, sides: readonly Side[] = ['stable', 'canary']): Promise<string | null> {
  if (ctx.policy.analysis.queries['requests'] === undefined) return null;
  const queries = sides.map((side) => ctx.render('requests', side));
  const results = await Promise.all(queries.map((q) => ctx.result(q)));
  if (results.some((r) => r.samples.length > 0)) return null;
  return (
    `Prometheus has no request data for ingress ${ctx.target.ingress} in namespace ${ctx.target.namespace} at ${ctx.at.toISOString()}: ` +
    `the requests query returned nothing for ${sides.length > 1 ? 'stable nor canary' : sides[0]}, so nothing can be judged ` +
    `(check the target name, the namespace (-n), that the time is not in the future, and that Prometheus scrapes what the ${ctx.policy.analysis.preset} preset reads); ` +
    `query: ${queries[0]}`
  );
}
