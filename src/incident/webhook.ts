import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Incident } from './incident.js';
import type { Deliverer, Delivery, DeliveryContext } from './delivery.js';
import { expectSuccess, send, type HttpTransport } from './http.js';

// The generic webhook: the incident as JSON, signed like GitHub signs its webhooks, so a receiver
// can check the body came from us and was not altered.

export const SIGNATURE_HEADER = 'X-Canary-Signature-256';
export const EVENT_HEADER = 'X-Canary-Event';
export const DELIVERY_HEADER = 'X-Canary-Delivery';
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

export interface WebhookBody {
  event: 'canary.incident';
  /** Same as incident.version: bumped on any incompatible change of this body. */
  version: number;
  sentAt: string;
  incident: Incident;
}

/** "sha256=" + hex HMAC-SHA256 of the exact body bytes. */
export function sign(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** For receivers: constant-time comparison of a signature header against the body. */
export function verifySignature(body: string, secret: string, header: string | undefined): boolean {
  if (!header) return false;
  const expected = Buffer.from(sign(body, secret));
  const given = Buffer.from(header);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export interface WebhookTarget {
  name: string;
  url: string;
  secret?: string;
  headers: Record<string, string>;
}

export class WebhookDeliverer implements Deliverer {
  readonly name: string;
  readonly secrets: readonly string[];

  constructor(
    private readonly target: WebhookTarget,
    private readonly transport: HttpTransport,
    private readonly now: () => number = Date.now,
  ) {
    this.name = target.name;
    // The URL may carry a token in its path or query when it was read from env or a file.
    this.secrets = [target.secret ?? '', ...urlSecrets(target.url)].filter(Boolean);
  }

  /** "webhook" for the default name, "webhook ops" for a named one. */
  get label(): string {
    return this.name === 'webhook' ? 'webhook' : `webhook ${this.name}`;
  }

  async deliver(incident: Incident, ctx: DeliveryContext): Promise<Delivery> {
    const payload: WebhookBody = { event: 'canary.incident', version: incident.version, sentAt: new Date(this.now()).toISOString(), incident };
    const body = JSON.stringify(payload);
    const headers: Record<string, string> = {
      ...this.target.headers,
      'content-type': 'application/json',
      'user-agent': 'canary-incident',
      [EVENT_HEADER]: 'incident',
      [DELIVERY_HEADER]: ctx.deliveryId,
      [IDEMPOTENCY_HEADER]: incident.rolloutId,
    };
    if (this.target.secret) headers[SIGNATURE_HEADER] = sign(body, this.target.secret);
    const res = await send(this.transport, { method: 'POST', url: this.target.url, headers, body }, this.label, ctx);
    expectSuccess(res, this.label);
    return { message: `delivered to ${hostOf(this.target.url)} (HTTP ${res.status})` };
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the webhook';
  }
}

/** Parts of a URL that may be credentials: user info, path segments and query values. */
export function urlSecrets(url: string): string[] {
  try {
    const u = new URL(url);
    const parts = [u.username, u.password, ...u.searchParams.values()];
    // Path segments long enough to be tokens (Slack's are 24 characters); short ones are words.
    for (const seg of u.pathname.split('/')) if (seg.length >= 16) parts.push(seg);
    return parts.filter((p) => p.length >= 6);
  } catch {
    return [url];
  }
}
