import { performance } from 'node:perf_hooks';

// The one way tests wait: for a state they can observe (a request the fake saw, a weight in the
// API, a sample in Prometheus), polled until it holds. The bound is on waiting, never an
// assertion about time: a loaded machine only makes it take longer. Timers and the clock are the
// real ones captured at load, so a test that fakes setTimeout and Date (vi.useFakeTimers) can
// still wait for its I/O while virtual time stands still.

const realSetTimeout = globalThis.setTimeout;
const realSetImmediate = globalThis.setImmediate;

/** Options of a wait; a plain number is `timeoutMs`. */
export interface WaitOptions {
  /** Gives up after this long (default 60 s): a bound on waiting, not a measurement. */
  timeoutMs?: number;
  /** How often to look again (default 25 ms; 0 looks again at the next turn of the event loop). */
  intervalMs?: number;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => (ms > 0 ? realSetTimeout(resolve, ms) : realSetImmediate(resolve)));

/**
 * Looks until `probe` gives a value (not undefined) and returns it. A probe that throws is
 * looked at again (the API server restarting, Prometheus not ready); the last error is in the
 * timeout message.
 */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, options: WaitOptions | number = {}): Promise<T> {
  const opts = typeof options === 'number' ? { timeoutMs: options } : options;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const giveUpAt = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() > giveUpAt) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${why}`);
    }
    await pause(opts.intervalMs ?? 25);
  }
}

/** Waits until `check` holds (see until); a number is the timeout in ms. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, opts: WaitOptions | number = {}): Promise<void> {
  await until(what, async () => ((await check()) ? true : undefined), opts);
}
