// Delivery retries (through the one retry module, src/retry.ts) inside a fixed total time: an
// incident that cannot be delivered in that time is reported as failed, so a dead endpoint never
// holds the CLI (and the CI job) for long after traffic is already safe.

import { Deadline, retry, RetryError, systemRetryClock, type Classification, type RetryPolicy } from '../retry.js';

/**
 * How a delivery is retried: the one policy type (src/retry.ts), with every number filled in.
 * `deadlineMs` is the total time for all attempts and the waits between them; `timeoutMs` the
 * longest a single request may take (it also never runs past the deadline).
 */
export type RetryOptions = Required<Pick<RetryPolicy, 'deadlineMs' | 'timeoutMs' | 'baseDelayMs' | 'maxDelayMs' | 'attempts' | 'now' | 'sleep' | 'random'>>;

export const DEFAULT_RETRY: Omit<RetryOptions, 'deadlineMs'> = {
  timeoutMs: 10_000,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  attempts: 6,
  now: () => Date.now(),
  sleep: systemRetryClock.sleep,
  random: Math.random,
};

/** Thrown by an attempt; `retryable` says whether another attempt could succeed. */
export class AttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    /** The server's Retry-After, when it sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'AttemptError';
  }
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly attempts: number,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

export { Deadline };

const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;

export interface Attempt {
  /** 1-based. */
  number: number;
  /** The whole delivery's deadline: no request may run past it. */
  deadline: Deadline;
  /** Longest one request may take before the deadline applies. */
  attemptTimeoutMs: number;
  /** Aborted when the deadline passes or the run is cancelled for good. */
  signal?: AbortSignal;
}

/**
 * The time the next request of an attempt may take: min(attemptTimeoutMs, deadline − now). Throws
 * a non-retryable AttemptError once the deadline has passed, so an attempt that makes several
 * requests stops there instead of starting another.
 */
export function requestTimeoutMs(attempt: Attempt, what: string): number {
  const left = attempt.deadline.remainingMs();
  if (left <= 0) throw new AttemptError(`${what}: not sent: ${attempt.deadline.limit} was reached`, false);
  return Math.min(attempt.attemptTimeoutMs, left);
}

/**
 * Runs `attempt` through the one retry module (src/retry.ts) until it succeeds, fails
 * permanently, or the next wait would pass the deadline (by default `options.deadlineMs` from now).
 * Each request of an attempt is bounded by requestTimeoutMs(), so an attempt as a whole is bounded
 * only by the deadline. Resolves with the value and the number of attempts made; rejects with a
 * DeliveryError whose message is the last failure and how many attempts were made. `label` names
 * the sink in messages ("webhook", "Slack").
 */
export async function withRetry<T>(
  run: (attempt: Attempt) => Promise<T>,
  options: RetryOptions,
  given?: Deadline,
  label = 'delivery',
): Promise<{ value: T; attempts: number }> {
  const deadline = given ?? new Deadline(options.now, options.deadlineMs, `the ${seconds(options.deadlineMs)} delivery limit`);
  try {
    return await retry((ctx) => run({ number: ctx.number, deadline, attemptTimeoutMs: options.timeoutMs, signal: ctx.signal }), {
      deadlineMs: options.deadlineMs,
      deadline,
      attempts: options.attempts,
      baseDelayMs: options.baseDelayMs,
      maxDelayMs: options.maxDelayMs,
      now: options.now,
      sleep: options.sleep,
      random: options.random,
      classify,
    });
  } catch (err) {
    if (!(err instanceof RetryError)) throw err;
    const last = err.last instanceof Error ? err.last.message : String(err.last);
    // A request the deadline stopped in flight: say so plainly, as the request itself would have.
    if (err.cutShort) throw new DeliveryError(`${label}: stopped: ${deadline.limit} was reached`, err.attempts);
    if (err.reason === 'fatal') throw new DeliveryError(err.attempts > 1 ? `${last} (attempt ${err.attempts}; not retried)` : last, err.attempts);
    if (err.reason === 'deadline' && err.attempts === 0) throw new DeliveryError(`no attempt was made (${deadline.limit} was reached)`, 0);
    throw new DeliveryError(`${last} (${err.why})`, err.attempts);
  } finally {
    if (!given) deadline.dispose();
  }
}

function classify(err: unknown): Classification {
  if (!(err instanceof AttemptError) || !err.retryable) return 'fatal';
  return err.retryAfterMs === undefined ? 'retryable' : { retryAfterMs: err.retryAfterMs };
}
