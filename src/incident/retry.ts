// Delivery retries with exponential backoff inside a fixed total time: an incident that cannot be
// delivered in that time is reported as failed, so a dead endpoint never holds the CLI (and the CI
// job) for long after traffic is already safe.

export interface RetryOptions {
  /** Total time for all attempts and the waits between them. */
  totalMs: number;
  /** Longest a single attempt may take (it also never runs past the total). */
  attemptTimeoutMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

export const DEFAULT_RETRY: Omit<RetryOptions, 'totalMs'> = {
  attemptTimeoutMs: 10_000,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxAttempts: 6,
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
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

export interface Attempt {
  /** 1-based. */
  number: number;
  timeoutMs: number;
}

/**
 * Runs `attempt` until it succeeds, fails permanently, or the next wait would pass the total time.
 * Resolves with the value and the number of attempts made; rejects with a DeliveryError whose
 * message is the last failure and how many attempts were made.
 */
export async function withRetry<T>(run: (attempt: Attempt) => Promise<T>, options: RetryOptions): Promise<{ value: T; attempts: number }> {
  const deadline = options.now() + options.totalMs;
  let last = 'no attempt was made';
  let made = 0;
  for (let n = 1; n <= options.maxAttempts; n += 1) {
    const remaining = deadline - options.now();
    if (remaining <= 0) break;
    made = n;
    try {
      const value = await run({ number: n, timeoutMs: Math.min(options.attemptTimeoutMs, remaining) });
      return { value, attempts: n };
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
      const retryable = err instanceof AttemptError ? err.retryable : false;
      if (!retryable) throw new DeliveryError(n > 1 ? `${last} (attempt ${n}; not retried)` : last, n);
      if (n === options.maxAttempts) break;
      const backoff = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (n - 1));
      // Full jitter on the upper half keeps retries from many CI jobs apart without stalling.
      const delay = Math.max(err instanceof AttemptError && err.retryAfterMs !== undefined ? err.retryAfterMs : 0, backoff / 2 + (options.random() * backoff) / 2);
      if (options.now() + delay >= deadline) {
        throw new DeliveryError(`${last} (gave up after ${n} attempt${n === 1 ? '' : 's'}: the next retry would pass the ${Math.round(options.totalMs / 1000)}s delivery limit)`, n);
      }
      await options.sleep(delay);
    }
  }
  throw new DeliveryError(`${last} (gave up after ${made} attempt${made === 1 ? '' : 's'})`, made);
}
