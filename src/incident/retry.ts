// Delivery retries with exponential backoff inside a fixed total time: an incident that cannot be
// delivered in that time is reported as failed, so a dead endpoint never holds the CLI (and the CI
// job) for long after traffic is already safe.

export interface RetryOptions {
  /** Total time for all attempts and the waits between them. */
  totalMs: number;
  /** Longest a single request may take (it also never runs past the deadline). */
  attemptTimeoutMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
  now: () => number;
  /** Resolves after `ms`, or earlier once `signal` is aborted (the deadline was reached). */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  random: () => number;
}

function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export const DEFAULT_RETRY: Omit<RetryOptions, 'totalMs'> = {
  attemptTimeoutMs: 10_000,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxAttempts: 6,
  now: () => Date.now(),
  sleep: realSleep,
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

const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;

/**
 * The absolute time a delivery must be over by. Every request and every wait is bounded by it,
 * however many requests one attempt makes; a cancelled job can pull it in (never push it out).
 * `signal` aborts when it passes, so a request in flight stops then too.
 */
export class Deadline {
  private atMs: number;
  private label: string;
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly now: () => number,
    totalMs: number,
    label = `the ${seconds(totalMs)} delivery limit`,
  ) {
    this.atMs = now() + totalMs;
    this.label = label;
    this.arm();
  }

  /** When delivery must be over, on the `now` clock. */
  get at(): number {
    return this.atMs;
  }

  /** Which limit this is, for messages: "the 30s delivery limit". */
  get limit(): string {
    return this.label;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  remainingMs(): number {
    return this.atMs - this.now();
  }

  /** Moves the deadline to `at` if that is earlier. */
  pullIn(at: number, label: string): void {
    if (at >= this.atMs) return;
    this.atMs = at;
    this.label = label;
    this.arm();
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.dispose();
    const left = this.remainingMs();
    if (left <= 0) {
      this.controller.abort();
      return;
    }
    this.timer = setTimeout(() => this.controller.abort(), left);
    // The deadline must never keep the process alive on its own.
    this.timer.unref?.();
  }
}

export interface Attempt {
  /** 1-based. */
  number: number;
  /** The whole delivery's deadline: no request may run past it. */
  deadline: Deadline;
  /** Longest one request may take before the deadline applies. */
  attemptTimeoutMs: number;
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
 * Runs `attempt` until it succeeds, fails permanently, or the next wait would pass the deadline
 * (by default `options.totalMs` from now). Resolves with the value and the number of attempts
 * made; rejects with a DeliveryError whose message is the last failure and how many attempts were made.
 */
export async function withRetry<T>(
  run: (attempt: Attempt) => Promise<T>,
  options: RetryOptions,
  given?: Deadline,
): Promise<{ value: T; attempts: number }> {
  const deadline = given ?? new Deadline(options.now, options.totalMs);
  try {
    return await retryUntil(run, options, deadline);
  } finally {
    if (!given) deadline.dispose();
  }
}

async function retryUntil<T>(run: (attempt: Attempt) => Promise<T>, options: RetryOptions, deadline: Deadline): Promise<{ value: T; attempts: number }> {
  let last = 'no attempt was made';
  let made = 0;
  const plural = (n: number) => `${n} attempt${n === 1 ? '' : 's'}`;
  for (let n = 1; n <= options.maxAttempts; n += 1) {
    if (deadline.remainingMs() <= 0) break;
    made = n;
    try {
      const value = await run({ number: n, deadline, attemptTimeoutMs: options.attemptTimeoutMs });
      return { value, attempts: n };
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
      const retryable = err instanceof AttemptError ? err.retryable : false;
      if (!retryable) throw new DeliveryError(n > 1 ? `${last} (attempt ${n}; not retried)` : last, n);
      if (n === options.maxAttempts) break;
      const backoff = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (n - 1));
      // Full jitter on the upper half keeps retries from many CI jobs apart without stalling.
      const delay = Math.max(err instanceof AttemptError && err.retryAfterMs !== undefined ? err.retryAfterMs : 0, backoff / 2 + (options.random() * backoff) / 2);
      if (options.now() + delay >= deadline.at) {
        throw new DeliveryError(`${last} (gave up after ${plural(n)}: the next retry would pass ${deadline.limit})`, n);
      }
      await options.sleep(delay, deadline.signal);
    }
  }
  const why = deadline.remainingMs() <= 0 ? `: ${deadline.limit} was reached` : '';
  throw new DeliveryError(`${last} (gave up after ${plural(made)}${why})`, made);
}
