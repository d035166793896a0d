import { randomUUID } from 'node:crypto';
import { messageOf } from '../errors.js';
import type { IncidentResult, IncidentSink } from '../rollout/ports.js';
import type { RolloutRecord } from '../rollout/record.js';
import { redact, redactDeep } from '../secrets.js';
import { buildIncident, type Incident, type IncidentOptions } from './incident.js';
import { Deadline, withRetry, type Attempt, type RetryOptions } from './retry.js';

// The part every sink shares: build the incident once, retry the delivery within the sink's time
// limit, keep secrets out of the result, and never deliver the same rollout twice from one process.

export interface Delivery {
  url?: string;
  message: string;
}

export interface DeliveryContext extends Attempt {
  /** Same for every attempt of one delivery, so a receiver can recognise a retry. */
  deliveryId: string;
}

export interface Deliverer {
  readonly name: string;
  /** How messages name the sink ("webhook ops", "Slack"); `name` by default. */
  readonly label?: string;
  /** Every secret this sink holds, redacted from any message it produces. */
  readonly secrets: readonly string[];
  /** Every request goes through send() with `ctx`, which keeps it within the delivery's deadline. */
  deliver(incident: Incident, ctx: DeliveryContext): Promise<Delivery>;
}

export interface DeliveryOptions {
  timeoutMs: number;
  retry: Omit<RetryOptions, 'deadlineMs'>;
  incident: IncidentOptions;
  /** The run's cancellation signal: see CANCELLED_BUDGET_MS and CANCEL_GRACE_MS. */
  signal?: AbortSignal;
}

/**
 * A cancelled CI job is killed about ten seconds after its first signal; traffic and the record
 * are already safe by the time incidents are sent, so delivery gets what is left, not 30 s.
 */
export const CANCELLED_BUDGET_MS = 5_000;

/** When the job is cancelled while a sink is delivering, the sink has at most this long left. */
export const CANCEL_GRACE_MS = 3_000;

export class DeliveringSink implements IncidentSink {
  readonly name: string;
  /** Successful deliveries by rollout id: a second open() for the same rollout sends nothing. */
  private readonly delivered = new Map<string, IncidentResult>();

  constructor(
    private readonly deliverer: Deliverer,
    private readonly opts: DeliveryOptions,
  ) {
    this.name = deliverer.name;
  }

  async open(record: RolloutRecord): Promise<IncidentResult> {
    const previous = this.delivered.get(record.id);
    if (previous) return { ...previous, message: `already delivered for rollout ${record.id}: ${previous.message}` };
    // A reason or an error quoted in the record could carry a registered secret (a URL's token).
    const incident = redactDeep(buildIncident(record, this.opts.incident), this.deliverer.secrets);
    const deliveryId = randomUUID();
    const { signal, retry } = this.opts;
    const totalMs = signal?.aborted ? Math.min(this.opts.timeoutMs, CANCELLED_BUDGET_MS) : this.opts.timeoutMs;
    const deadline = new Deadline(retry.now, totalMs, `the ${Math.round(totalMs / 100) / 10}s delivery limit`);
    const onCancel = () => deadline.pullIn(retry.now() + CANCEL_GRACE_MS, `the ${CANCEL_GRACE_MS / 1000}s limit after the job was cancelled`);
    signal?.addEventListener('abort', onCancel, { once: true });
    try {
      const { value, attempts } = await withRetry(
        (attempt) => this.deliverer.deliver(incident, { ...attempt, deliveryId }),
        { ...retry, deadlineMs: this.opts.timeoutMs },
        deadline,
        this.deliverer.label ?? this.name,
      );
      const retried = attempts > 1 ? ` (after ${attempts} attempts)` : '';
      const result: IncidentResult = {
        sink: this.name,
        ok: true,
        ...(value.url !== undefined && { url: value.url }),
        message: redact(`${value.message}${retried}`, this.deliverer.secrets),
      };
      this.delivered.set(record.id, result);
      return result;
    } catch (err) {
      return { sink: this.name, ok: false, message: redact(messageOf(err), this.deliverer.secrets) };
    } finally {
      signal?.removeEventListener('abort', onCancel);
      deadline.dispose();
    }
  }
}
