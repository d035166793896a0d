import type { Side } from './promql-template.js';
import type { CheckContext } from './check-context.js';

export interface SideTraffic {
  /** Requests in the window; null when Prometheus had no data at all. */
  requests: number | null;
  errors: number | null;
  queries: string[];
}

/** Request and 5xx counts for one side over the analysis window. */
export async function observeTraffic(ctx: CheckContext, side: Side): Promise<SideTraffic> {
  const requestsQuery = ctx.render('requests', side);
  const errorsQuery = ctx.render('errors', side);
  const [requests, errors] = await Promise.all([ctx.value(requestsQuery), ctx.value(errorsQuery)]);
  return {
    requests: requests.ok ? requests.value : null,
    errors: errors.ok ? errors.value : null,
    queries: [requestsQuery, errorsQuery],
  };
}

/** Why a side's traffic is too thin to judge, or null when there is enough. */
export function tooLittleTraffic(side: Side, traffic: SideTraffic, ctx: CheckContext): string | null {
  const n = traffic.requests;
  if (n !== null && n >= ctx.minRequests) return null;
  const served = n === null ? 'no requests (no data)' : `${Math.round(n)} request${Math.round(n) === 1 ? '' : 's'}`;
  return `${side} served ${served} in the last ${ctx.windowText}; at least ${ctx.minRequests} are needed to judge`;
}
