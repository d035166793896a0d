import type { Deliverer, Delivery, DeliveryContext } from './delivery.js';
import { expectSuccess, send, type HttpTransport } from './http.js';
import { stableLine, type Incident } from './incident.js';
import { urlSecrets } from './webhook.js';

// Slack incoming webhook: a message someone can act on from a phone — what, why, the numbers,
// and where to look next. Incoming webhooks have no idempotency key; one process sends each
// rollout once (see DeliveringSink), and retries happen only when Slack did not accept the post.

const SECTION_LIMIT = 2900; // Slack rejects section text over 3000 characters.
const HEADER_LIMIT = 150;

/** Slack mrkdwn treats &, < and > as control characters. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const clip = (text: string, limit: number) => (text.length > limit ? `${text.slice(0, limit - 1)}…` : text);

export interface SlackMessage {
  text: string;
  blocks: Record<string, unknown>[];
}

export function slackMessage(incident: Incident): SlackMessage {
  const icon = incident.result === 'rolled-back' || incident.result === 'failed' || incident.result === 'rolled-back-after-promotion' ? ':rotating_light:' : ':warning:';
  const facts = [
    `*Reason:* ${slackEscape(incident.reason)}`,
    `*Target:* \`${incident.target}\` in \`${incident.namespace}\``,
    `*Images:* stable \`${slackEscape(incident.images.stable ?? 'unknown')}\` → canary \`${slackEscape(incident.images.canary)}\``,
    `*Stopped:* ${incident.failedAt.step === null ? 'before the first step' : `step ${incident.failedAt.step} at ${incident.failedAt.weight}%`}`,
    `*Traffic:* ${slackEscape(incident.rollback.traffic)}`,
    `*Stable:* ${slackEscape(stableLine(incident))}`,
  ].join('\n');
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`${incident.title}`, HEADER_LIMIT), emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: clip(`${icon} ${facts}`, SECTION_LIMIT) } },
  ];
  if (incident.failingChecks.length) {
    const checks = incident.failingChecks.map((f) => {
      const queries = f.queries.length ? `\n\`\`\`${slackEscape(f.queries.join('\n'))}\`\`\`` : '';
      return `• *${slackEscape(f.metric)}* (${slackEscape(f.comparison)}), check ${f.check} at ${f.weight}%: canary *${f.display.canary}* vs stable ${f.display.stable}, limit ${f.display.threshold}${queries}`;
    });
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(`*Failing checks*\n${checks.join('\n')}`, SECTION_LIMIT) } });
  }
  const links = [
    incident.runUrl ? `started by <${incident.runUrl}|this run>` : `started by ${slackEscape(incident.startedBy)}`,
    `rollout \`${incident.rolloutId}\``,
    ...(incident.dashboardUrl ? [`<${incident.dashboardUrl}|dashboard>`] : []),
  ];
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: links.join(' · ') }] });
  return { text: incident.summary, blocks };
}

export class SlackDeliverer implements Deliverer {
  readonly secrets: readonly string[];

  constructor(
    readonly name: string,
    private readonly webhookUrl: string,
    private readonly transport: HttpTransport,
  ) {
    this.secrets = [webhookUrl, ...urlSecrets(webhookUrl)];
  }

  async deliver(incident: Incident, ctx: DeliveryContext): Promise<Delivery> {
    const body = JSON.stringify(slackMessage(incident));
    const res = await send(
      this.transport,
      { method: 'POST', url: this.webhookUrl, headers: { 'content-type': 'application/json; charset=utf-8' }, body },
      'Slack',
      ctx,
    );
    expectSuccess(res, 'Slack');
    return { message: 'posted to Slack' };
  }
}
