import type { Deliverer, Delivery, DeliveryContext } from './delivery.js';
import { expectSuccess, parseJson, send, type HttpTransport } from './http.js';
import type { PagerDutySeverity } from './config.js';
import type { Incident } from './incident.js';
import { AttemptError } from './retry.js';

// PagerDuty Events API v2 "trigger". dedup_key is the rollout id, so however often the same
// rollout is reported (retries, a second process, `canary rollback` after a failed deploy),
// PagerDuty keeps one alert. A dry-run changed nothing in production: it is sent as "info" under
// its own dedup_key, so it neither pages anyone as an outage nor merges into a real alert.

const SUMMARY_LIMIT = 1024;

export interface PagerDutyEvent {
  routing_key: string;
  event_action: 'trigger';
  dedup_key: string;
  payload: {
    summary: string;
    source: string;
    severity: PagerDutySeverity;
    timestamp: string;
    component: string;
    group: string;
    class: string;
    custom_details: Record<string, unknown>;
  };
  client: string;
  client_url?: string;
  links: { href: string; text: string }[];
}

/** The dedup_key of a rollout's alert; dry-runs get their own. */
export const pagerDutyDedupKey = (incident: Pick<Incident, 'rolloutId' | 'dryRun'>) => (incident.dryRun ? `dry-run:${incident.rolloutId}` : incident.rolloutId);

export function pagerDutyEvent(incident: Incident, routingKey: string, severity: PagerDutySeverity): PagerDutyEvent {
  const links = [
    ...(incident.runUrl ? [{ href: incident.runUrl, text: 'Run that started the rollout' }] : []),
    ...(incident.dashboardUrl ? [{ href: incident.dashboardUrl, text: 'Dashboard' }] : []),
  ];
  const summary = incident.summary.length > SUMMARY_LIMIT ? `${incident.summary.slice(0, SUMMARY_LIMIT - 1)}…` : incident.summary;
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: pagerDutyDedupKey(incident),
    payload: {
      summary,
      source: `canary/${incident.namespace}/${incident.target}`,
      severity: incident.dryRun ? 'info' : severity,
      timestamp: incident.endedAt,
      component: incident.target,
      group: incident.namespace,
      class: `canary ${incident.result}`,
      custom_details: {
        reason: incident.reason,
        images: incident.images,
        stopped_at: incident.failedAt,
        traffic: incident.rollback.traffic,
        stable_verified: incident.rollback.stableVerified,
        stable_message: incident.rollback.stableMessage,
        failing_checks: incident.failingChecks.map((f) => ({
          check: f.check,
          weight: f.weight,
          metric: f.metric,
          comparison: f.comparison,
          canary: f.display.canary,
          stable: f.display.stable,
          limit: f.display.threshold,
          reason: f.reason,
          promql: f.queries,
        })),
        started_by: incident.startedBy,
        rollout_id: incident.rolloutId,
        policy: `${incident.policy.name} (${incident.policy.source})`,
        dry_run: incident.dryRun,
        timeline: incident.timeline.map((t) => `${t.at} ${t.text}`),
      },
    },
    client: 'canary',
    ...(incident.runUrl ? { client_url: incident.runUrl } : incident.dashboardUrl ? { client_url: incident.dashboardUrl } : {}),
    links,
  };
}

export class PagerDutyDeliverer implements Deliverer {
  readonly secrets: readonly string[];

  constructor(
    readonly name: string,
    private readonly routingKey: string,
    private readonly severity: PagerDutySeverity,
    private readonly url: string,
    private readonly transport: HttpTransport,
  ) {
    this.secrets = [routingKey];
  }

  async deliver(incident: Incident, ctx: DeliveryContext): Promise<Delivery> {
    const body = JSON.stringify(pagerDutyEvent(incident, this.routingKey, this.severity));
    const res = await send(this.transport, { method: 'POST', url: this.url, headers: { 'content-type': 'application/json' }, body }, 'PagerDuty', ctx);
    expectSuccess(res, 'PagerDuty');
    const answer = parseJson(res.text) as { status?: string; dedup_key?: string } | undefined;
    if (answer?.status !== undefined && answer.status !== 'success') {
      throw new AttemptError(`PagerDuty did not accept the event: ${res.text.slice(0, 200)}`, false);
    }
    return { message: `PagerDuty alert triggered (dedup_key ${answer?.dedup_key ?? pagerDutyDedupKey(incident)})` };
  }
}
