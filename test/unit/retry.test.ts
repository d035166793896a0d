import { describe, expect, it } from 'vitest';
import { backoffMs, Deadline, parseRetryAfter, retry, RetryError, type Classification, type RetryClock, type RetryOptions } from '../../src/retry.js';

/** Virtual time: a wait moves the clock at once, so deadlines are tested without waiting. */
function virtualClock(start = 0) {
  let now = start;
  const sleeps: number[] = [];
  const clock: RetryClock = {
    now: () => now,
    sleep: async (ms, signal) => {
      if (signal?.aborted) return;
      sleeps.push(ms);
      now += ms;
    },
  };
  return { clock, sleeps, advance: (ms: number) => (now += ms), now: () => now };
}

const retryable = (): Classification => 'retryable';

async function failure(p: Promise<unknown>): Promise<RetryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RetryError);
  return err as RetryError;
}

describe('retry: the overall deadline', () => {
  it('retries with growing waits and returns the value and the attempts made', async () => {
    const { clock, sleeps } = virtualClock();
    let calls = 0;
    const result = await retry(
      async () => {
        calls += 1;
        if (calls < 3) throw new Error('HTTP 503');
        return 'ok';
      },
      { deadlineMs: 30_000, classify: retryable, ...clock, random: () => 0.5 },
    );
    expect(result).toEqual({ value: 'ok', attempts: 3 });
    expect(sleeps).toEqual([375, 750]);
  });

  it('stops before a wait would pass the deadline, however many attempts are allowed', async () => {
    const { clock, advance, now } = virtualClock();
    let calls = 0;
    const err = await failure(
      retry(
        async ({ timeoutMs }) => {
          calls += 1;
          advance(Math.min(4_000, timeoutMs)); // every attempt takes 4 s (or what is left) before it fails
          throw new Error('no answer');
        },
        { deadlineMs: 10_000, attempts: 100, classify: retryable, ...clock, random: () => 0.5 },
      ),
    );
    expect(err.reason).toBe('deadline');
    // 4 s, wait 0.375 s, 4 s, wait 0.75 s, then the 0.875 s that are left.
    expect(err.attempts).toBe(3);
    expect(err.message).toBe('no answer (gave up after 3 attempts: the next retry would pass the 10s limit)');
    expect(now()).toBe(10_000);
    expect(calls).toBe(3);
  });

  it('gives each attempt no more time than is left before the deadline', async () => {
    const { clock, advance } = virtualClock();
    const timeouts: number[] = [];
    const err = await failure(
      retry(
        async ({ timeoutMs }) => {
          timeouts.push(timeoutMs);
          advance(timeoutMs); // a black hole: every attempt uses all the time it is given
          throw new Error('timed out');
        },
        { deadlineMs: 25_000, timeoutMs: 10_000, baseDelayMs: 500, classify: retryable, ...clock, random: () => 0 },
      ),
    );
    // 10 s, wait 0.25 s, 10 s, wait 0.5 s, then only 4.25 s are left.
    expect(timeouts).toEqual([10_000, 10_000, 4_250]);
    expect(err.reason).toBe('deadline');
  });

  it('abandons an attempt that ignores its signal once its time is up, and aborts the signal', async () => {
    let seen: AbortSignal | undefined;
    const err = await failure(
      retry(
        ({ signal }) => {
          seen = signal;
          return new Promise<never>(() => undefined); // never settles
        },
        { deadlineMs: 60_000, attempts: 1, timeoutMs: 5, classify: retryable },
      ),
    );
    expect(err.reason).toBe('attempts');
    expect(err.message).toBe('no answer within 5 ms (gave up after 1 attempt)');
    expect(seen?.aborted).toBe(true);
  });

  it('stops an attempt in flight when the deadline is pulled in', async () => {
    const deadline = new Deadline(() => Date.now(), 60_000);
    const err = await failure(
      retry(
        () => {
          deadline.pullIn(Date.now(), 'the limit after the job was cancelled');
          return new Promise<never>(() => undefined);
        },
        { deadlineMs: 60_000, classify: retryable, deadline },
      ),
    );
    deadline.dispose();
    expect(err.reason).toBe('deadline');
    expect(err.message).toMatch(/^no answer within \d+ ms \(gave up after 1 attempt: the limit after the job was cancelled was reached\)$/);
  });
});

describe('retry: jitter', () => {
  it('waits between half and all of the exponential backoff, capped', () => {
    const settings = { baseDelayMs: 1_000, maxDelayMs: 8_000 };
    expect(backoffMs(1, settings, () => 0)).toBe(500);
    expect(backoffMs(1, settings, () => 0.999_999)).toBeCloseTo(1_000, 2);
    expect(backoffMs(3, settings, () => 0)).toBe(2_000);
    expect(backoffMs(3, settings, () => 0.999_999)).toBeCloseTo(4_000, 2);
    expect(backoffMs(10, settings, () => 0)).toBe(4_000);
    expect(backoffMs(10, settings, () => 0.999_999)).toBeCloseTo(8_000, 2);
  });

  it('uses the random source it is given for every wait', async () => {
    const { clock, sleeps } = virtualClock();
    const draws = [0, 0.999_999, 0.5];
    await failure(
      retry(
        async () => {
          throw new Error('down');
        },
        { deadlineMs: 60_000, attempts: 4, baseDelayMs: 100, classify: retryable, ...clock, random: () => draws.shift() ?? 0 },
      ),
    );
    expect(sleeps.map((s) => Math.round(s))).toEqual([50, 200, 300]);
  });
});

describe('retry: Retry-After', () => {
  it('reads delay-seconds and HTTP dates, and caps both', () => {
    const now = Date.parse('2026-01-15T10:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 15 Jan 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Thu, 15 Jan 2026 09:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('3600', now, 60_000)).toBe(60_000);
    expect(parseRetryAfter('Thu, 15 Jan 2026 12:00:00 GMT', now, 60_000)).toBe(60_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('waits as long as the server asks when that is longer than the backoff', async () => {
    const { clock, sleeps } = virtualClock();
    let calls = 0;
    await retry(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('HTTP 429');
        return 'ok';
      },
      { deadlineMs: 30_000, classify: () => ({ retryAfterMs: 5_000 }), ...clock, random: () => 0.5 },
    );
    expect(sleeps).toEqual([5_000]);
  });

  it('caps what the server asks for, and gives up when even that would pass the deadline', async () => {
    const { clock, sleeps } = virtualClock();
    let calls = 0;
    await retry(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('HTTP 429');
        return 'ok';
      },
      { deadlineMs: 300_000, maxRetryAfterMs: 20_000, classify: () => ({ retryAfterMs: 3_600_000 }), ...clock, random: () => 0.5 },
    );
    expect(sleeps).toEqual([20_000]);

    const err = await failure(
      retry(
        async () => {
          throw new Error('HTTP 429');
        },
        { deadlineMs: 10_000, classify: () => ({ retryAfterMs: 15_000 }), ...clock },
      ),
    );
    expect(err.reason).toBe('deadline');
    expect(err.attempts).toBe(1);
  });
});

describe('retry: the classifier and cancellation', () => {
  it('hands a fatal error back untouched after one attempt', async () => {
    const { clock, sleeps } = virtualClock();
    const notFound = Object.assign(new Error('HTTP 404'), { code: 404 });
    let calls = 0;
    const err = await failure(
      retry(
        async () => {
          calls += 1;
          throw notFound;
        },
        { deadlineMs: 30_000, classify: (e) => ((e as { code?: number }).code === 404 ? 'fatal' : 'retryable'), ...clock },
      ),
    );
    expect(err.reason).toBe('fatal');
    expect(err.last).toBe(notFound);
    expect(calls).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('classifies every attempt: a fatal error after retries stops there', async () => {
    const { clock } = virtualClock();
    const errors = [new Error('503'), new Error('503'), new Error('400')];
    const err = await failure(
      retry(
        async () => {
          throw errors.shift();
        },
        { deadlineMs: 30_000, classify: (e) => ((e as Error).message === '400' ? 'fatal' : 'retryable'), ...clock },
      ),
    );
    expect(err.reason).toBe('fatal');
    expect(err.attempts).toBe(3);
    expect(err.message).toBe('400 (attempt 3; not retried)');
  });

  it('stops an attempt in flight when the caller aborts, and aborts its signal', async () => {
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const err = await failure(
      retry(
        ({ signal }) => {
          seen = signal;
          controller.abort();
          return new Promise<never>(() => undefined);
        },
        { deadlineMs: 60_000, classify: retryable, signal: controller.signal },
      ),
    );
    expect(err.reason).toBe('aborted');
    expect(seen?.aborted).toBe(true);
  });

  it('stops waiting when the caller aborts during a backoff', async () => {
    const controller = new AbortController();
    let calls = 0;
    const clock: RetryClock = {
      now: () => 0,
      sleep: async (_ms, signal) => {
        controller.abort();
        expect(signal?.aborted).toBe(true);
      },
    };
    const options: RetryOptions = { deadlineMs: 60_000, classify: retryable, signal: controller.signal, ...clock };
    const err = await failure(
      retry(async () => {
        calls += 1;
        throw new Error('down');
      }, options),
    );
    expect(err.reason).toBe('aborted');
    expect(err.message).toBe('down (cancelled after 1 attempt)');
    expect(calls).toBe(1);
  });

  it('makes no attempt when cancelled before the first', async () => {
    let calls = 0;
    const err = await failure(
      retry(
        async () => {
          calls += 1;
        },
        { deadlineMs: 60_000, classify: retryable, signal: AbortSignal.abort() },
      ),
    );
    expect(err.reason).toBe('aborted');
    expect(calls).toBe(0);
  });
});
