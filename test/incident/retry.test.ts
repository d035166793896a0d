import { describe, expect, it } from 'vitest';
import { AttemptError, Deadline, DEFAULT_RETRY, DeliveryError, requestTimeoutMs, withRetry, type RetryOptions } from '../../src/incident/retry.js';

/** Virtual time: sleeping moves the clock, so the total limit is tested without waiting. */
function virtual(totalMs: number, overrides: Partial<RetryOptions> = {}) {
  let now = 0;
  const sleeps: number[] = [];
  const options: RetryOptions = {
    ...DEFAULT_RETRY,
    deadlineMs: totalMs,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    random: () => 0.5,
    ...overrides,
  };
  return { options, sleeps, advance: (ms: number) => (now += ms) };
}

describe('delivery retries', () => {
  it('retries a temporary failure with growing waits and succeeds', async () => {
    const { options, sleeps } = virtual(30_000);
    let calls = 0;
    const result = await withRetry(async () => {
      calls += 1;
      if (calls < 3) throw new AttemptError('Slack answered HTTP 503', true);
      return 'ok';
    }, options);
    expect(result).toEqual({ value: 'ok', attempts: 3 });
    expect(sleeps).toEqual([375, 750]);
  });

  it('stops before the total time would pass, and says so', async () => {
    const { options, advance } = virtual(10_000);
    let calls = 0;
    const err = await withRetry(async () => {
      calls += 1;
      advance(3_000); // each attempt takes 3 s before it fails
      throw new AttemptError('PagerDuty: no answer within 3s', true);
    }, options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).message).toMatch(/^PagerDuty: no answer within 3s \(gave up after 3 attempts: the next retry would pass the 10s delivery limit\)$/);
    expect(calls).toBe(3);
  });

  it('does not retry a request the server rejected as wrong', async () => {
    const { options, sleeps } = virtual(30_000);
    let calls = 0;
    const err = await withRetry(async () => {
      calls += 1;
      throw new AttemptError('PagerDuty answered HTTP 400: invalid routing key', false);
    }, options).catch((e: unknown) => e);
    expect((err as DeliveryError).message).toBe('PagerDuty answered HTTP 400: invalid routing key');
    expect(calls).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('waits as long as Retry-After asks, within the limit', async () => {
    const { options, sleeps } = virtual(30_000);
    let calls = 0;
    await withRetry(async () => {
      calls += 1;
      if (calls === 1) throw new AttemptError('GitHub answered HTTP 429', true, 5_000);
      return 'ok';
    }, options);
    expect(sleeps).toEqual([5_000]);
  });

  it('gives each attempt no more time than is left', async () => {
    const { options, advance } = virtual(12_000);
    const timeouts: number[] = [];
    await withRetry(async (attempt) => {
      const timeoutMs = requestTimeoutMs(attempt, 'webhook');
      timeouts.push(timeoutMs);
      advance(timeoutMs);
      if (attempt.number < 2) throw new AttemptError('webhook: no answer', true);
      return 'ok';
    }, options);
    expect(timeouts).toEqual([10_000, 12_000 - 10_000 - 375]);
  });

  it('bounds every request of an attempt by the deadline, and sends none after it', async () => {
    const { options, advance } = virtual(15_000);
    const timeouts: number[] = [];
    // One attempt making several requests of 6 s each, as the GitHub sink does (list pages, create).
    const err = await withRetry(async (attempt) => {
      for (let i = 0; i < 4; i += 1) {
        const timeoutMs = requestTimeoutMs(attempt, 'GitHub');
        timeouts.push(timeoutMs);
        advance(Math.min(6_000, timeoutMs));
      }
      return 'ok';
    }, options).catch((e: unknown) => e);
    expect(timeouts).toEqual([10_000, 9_000, 3_000]);
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).message).toBe('GitHub: not sent: the 15s delivery limit was reached');
  });

  it('stops waiting and gives up when the deadline is pulled in during a wait', async () => {
    let now = 0;
    const deadline = new Deadline(() => now, 60_000);
    const options: RetryOptions = {
      ...DEFAULT_RETRY,
      deadlineMs: 60_000,
      now: () => now,
      random: () => 0.5,
      // The job is cancelled during the first wait: 3 s are left from then on.
      sleep: async (ms) => {
        deadline.pullIn(now + 3_000, 'the 3s limit after the job was cancelled');
        now += Math.min(ms, deadline.remainingMs());
      },
    };
    const err = await withRetry(async () => {
      throw new AttemptError('webhook answered HTTP 503', true);
    }, options, deadline).catch((e: unknown) => e);
    deadline.dispose();
    expect((err as DeliveryError).message).toBe(
      'webhook answered HTTP 503 (gave up after 4 attempts: the next retry would pass the 3s limit after the job was cancelled)',
    );
    expect(now).toBeLessThanOrEqual(3_000);
  });
});
