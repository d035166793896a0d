// The one retry loop every adapter uses (Kubernetes, Prometheus, incident sinks). What makes a
// call give up is an overall deadline, not a count of attempts: a black-holed server must never
// hold the CLI for (attempts × timeout) when traffic may need moving. Each adapter supplies only
// what its failures mean (the classifier) and its numbers.

/** What a failed attempt means, as the caller's classifier judges it. */
export type Classification =
  /** Another attempt cannot help (bad input, 404, 409): stop now and hand the error back. */
  | 'fatal'
  /** Worth another attempt after the usual backoff. */
  | 'retryable'
  /** Worth another attempt, no sooner than the server asked (its Retry-After). */
  | { retryAfterMs: number };

export type Classifier = (err: unknown) => Classification;

/** Time for the retry loop: injectable so tests run in virtual time. */
export interface RetryClock {
  now(): number;
  /** Resolves after `ms`, or as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemRetryClock: RetryClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/**
 * The one retry policy type: how every adapter (Kubernetes, Prometheus, incident sinks, the
 * Pushgateway) is told to retry. Each adapter keeps only its defaults and what its failures mean
 * (the classifier); the numbers, the shared deadline, cancellation and the injectable time are
 * spelled the same everywhere.
 */
export interface RetryPolicy {
  /** Tries at most, the first included (default: as many as the deadline allows). */
  attempts?: number;
  /** Longest one attempt may take; never more than the time left before the deadline. */
  timeoutMs?: number;
  /** Total time for all attempts and the waits between them. */
  deadlineMs?: number;
  /** First backoff, doubled after every failure, with jitter (default 500 ms). */
  baseDelayMs?: number;
  /** Longest backoff (default 8 s). */
  maxDelayMs?: number;
  /** Longest wait a server's Retry-After can ask for (default 60 s). */
  maxRetryAfterMs?: number;
  /** A deadline shared with the caller (several calls, a stop path): pulled in, never out. */
  deadline?: Deadline;
  /** The caller's cancellation: stops the attempt in flight and any wait. */
  signal?: AbortSignal;
  /** The clock the deadline is judged on (tests: virtual time). */
  now?: () => number;
  /** Resolves after `ms`, or as soon as `signal` aborts (tests: virtual time). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1) (tests). */
  random?: () => number;
}

/** What the loop itself needs on top of a policy: a deadline and what failures mean. */
export interface RetryOptions extends RetryPolicy {
  deadlineMs: number;
  classify: Classifier;
  /** The error an attempt that ran out of time fails with (then classified like any other). */
  timeoutError?: (ms: number) => unknown;
}

export interface AttemptContext {
  /** 1-based. */
  number: number;
  /** Aborted when this attempt times out, the deadline passes or the caller cancels: wire it into the request. */
  signal: AbortSignal;
  /** How long this attempt may take: min(timeoutMs, time left). */
  timeoutMs: number;
  deadline: Deadline;
}

export const DEFAULT_BASE_DELAY_MS = 500;
export const DEFAULT_MAX_DELAY_MS = 8_000;
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;

/**
 * The absolute time a retried call must be over by. Every attempt and every wait is bounded by
 * it; a caller can pull it in (a cancelled job), never push it out. `signal` aborts when it passes,
 * so a request in flight stops then too.
 */
export class Deadline {
  private atMs: number;
  private label: string;
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly now: () => number,
    totalMs: number,
    label = `the ${seconds(totalMs)} limit`,
  ) {
    this.atMs = now() + totalMs;
    this.label = label;
    this.arm();
  }

  /** When the call must be over, on the `now` clock. */
  get at(): number {
    return this.atMs;
  }

  /** Which limit this is, for messages: "the 30s limit". */
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

/** Why a retried call stopped without a value. */
export type GiveUpReason = 'fatal' | 'attempts' | 'deadline' | 'aborted';

/**
 * A retried call that gave up. `last` is the last attempt's own error (a 404 stays a 404);
 * `why` says in words why no further attempt was made.
 */
export class RetryError extends Error {
  constructor(
    readonly reason: GiveUpReason,
    readonly attempts: number,
    readonly last: unknown,
    readonly why: string,
    /** The last attempt was still running when the deadline passed, and was stopped. */
    readonly cutShort = false,
  ) {
    super(`${messageOf(last)} (${why})`);
    this.name = 'RetryError';
  }
}

/** The default error of an attempt that ran out of time. */
export class AttemptTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const plural = (n: number) => `${n} attempt${n === 1 ? '' : 's'}`;

/**
 * The backoff before attempt `attempt + 1`: exponential from `baseDelayMs`, capped at `maxDelayMs`,
 * with "equal jitter" (between half and all of it), so many canaries retrying against one
 * recovering server spread out without any of them retrying at once.
 */
export function backoffMs(attempt: number, settings: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const exp = Math.min(settings.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, (settings.baseDelayMs ?? DEFAULT_BASE_DELAY_MS) * 2 ** (attempt - 1));
  return exp / 2 + (random() * exp) / 2;
}

/**
 * A Retry-After header (RFC 9110: delay-seconds or an HTTP date) as milliseconds from `nowMs`,
 * capped at `maxMs`; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number, maxMs = DEFAULT_MAX_RETRY_AFTER_MS): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (!text) return undefined;
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (!Number.isFinite(at)) return undefined;
    ms = at - nowMs;
  }
  return Math.min(Math.max(0, ms), maxMs);
}

/**
 * Runs `run` until it succeeds, the classifier calls its error fatal, the attempts run out, the
 * next wait would pass the deadline, or the caller cancels. Each attempt gets a signal and at
 * most min(timeoutMs, time left); an attempt still running then is abandoned (and its
 * signal aborted) even if `run` ignores the signal. Rejects only with RetryError.
 */
export async function retry<T>(run: (attempt: AttemptContext) => Promise<T>, options: RetryOptions): Promise<{ value: T; attempts: number }> {
  const clock: RetryClock = { now: options.now ?? systemRetryClock.now, sleep: options.sleep ?? systemRetryClock.sleep };
  const deadline = options.deadline ?? new Deadline(() => clock.now(), options.deadlineMs);
  try {
    return await loop(run, options, clock, deadline);
  } finally {
    if (!options.deadline) deadline.dispose();
  }
}

async function loop<T>(run: (attempt: AttemptContext) => Promise<T>, options: RetryOptions, clock: RetryClock, deadline: Deadline): Promise<{ value: T; attempts: number }> {
  const maxAttempts = Math.max(1, options.attempts ?? Number.POSITIVE_INFINITY);
  const random = options.random ?? Math.random;
  const caller = options.signal;
  let last: unknown = new Error('no attempt was made');
  let made = 0;
  const cancelled = () => new RetryError('aborted', made, last, made ? `cancelled after ${plural(made)}` : 'cancelled before the first attempt');
  const reached = (cutShort = false) => new RetryError('deadline', made, last, `gave up after ${plural(made)}: ${deadline.limit} was reached`, cutShort);

  for (let n = 1; n <= maxAttempts; n += 1) {
    if (caller?.aborted) throw cancelled();
    const left = deadline.remainingMs();
    if (left <= 0) throw reached();
    made = n;
    const timeoutMs = Math.min(options.timeoutMs ?? Number.POSITIVE_INFINITY, left);
    const timeoutError = options.timeoutError ?? ((ms: number) => new AttemptTimeoutError(ms));
    const started = clock.now();
    try {
      const value = await attempt(run, { number: n, timeoutMs, deadline }, caller, timeoutError);
      return { value, attempts: n };
    } catch (err) {
      if (err instanceof Stopped) {
        if (err.by === 'caller') throw cancelled();
        // Cut short by the deadline: to the operator that is an attempt that got no answer in time.
        last = timeoutError(Math.max(0, Math.round(clock.now() - started)));
        throw reached(true);
      }
      last = err;
    }
    const verdict = options.classify(last);
    if (verdict === 'fatal') throw new RetryError('fatal', n, last, n > 1 ? `attempt ${n}; not retried` : 'not retried');
    if (n === maxAttempts) break;
    const asked = typeof verdict === 'object' ? Math.min(verdict.retryAfterMs, options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS) : 0;
    const delay = Math.max(asked, backoffMs(n, options, random));
    if (clock.now() + delay >= deadline.at) {
      throw new RetryError('deadline', n, last, `gave up after ${plural(n)}: the next retry would pass ${deadline.limit}`);
    }
    await clock.sleep(delay, caller ? AbortSignal.any([caller, deadline.signal]) : deadline.signal);
    if (caller?.aborted) throw cancelled();
  }
  throw new RetryError('attempts', made, last, `gave up after ${plural(made)}`);
}

/** An attempt cut short by the deadline or the caller, not failed on its own. */
class Stopped extends Error {
  constructor(readonly by: 'deadline' | 'caller') {
    super(by);
  }
}

function attempt<T>(
  run: (attempt: AttemptContext) => Promise<T>,
  ctx: Omit<AttemptContext, 'signal'>,
  caller: AbortSignal | undefined,
  timeoutError: (ms: number) => unknown,
): Promise<T> {
  const controller = new AbortController();
  const signals = [controller.signal, ctx.deadline.signal, ...(caller ? [caller] : [])];
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settle = () => {
      if (timer !== undefined) clearTimeout(timer);
      ctx.deadline.signal.removeEventListener('abort', onDeadline);
      caller?.removeEventListener('abort', onCaller);
    };
    // Reject first, then abort: the request's own abort error must not win the race.
    const stop = (err: unknown) => {
      settle();
      reject(err);
      controller.abort(err);
    };
    const onDeadline = () => stop(new Stopped('deadline'));
    const onCaller = () => stop(new Stopped('caller'));
    if (ctx.deadline.signal.aborted) return onDeadline();
    if (caller?.aborted) return onCaller();
    ctx.deadline.signal.addEventListener('abort', onDeadline, { once: true });
    caller?.addEventListener('abort', onCaller, { once: true });
    if (Number.isFinite(ctx.timeoutMs)) timer = setTimeout(() => stop(timeoutError(Math.round(ctx.timeoutMs))), ctx.timeoutMs);
    let promise: Promise<T>;
    try {
      promise = run({ ...ctx, signal: AbortSignal.any(signals) });
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (err: unknown) => {
        settle();
        reject(err);
      },
    );
  });
}
