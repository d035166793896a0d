import type { Clock } from './ports.js';

/** Wall-clock time for live rollouts. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/**
 * Time that moves only when the engine sleeps: replays and backtests run a 70-minute rollout in
 * milliseconds, and every timestamp is the one the rollout would have had.
 */
export class VirtualClock implements Clock {
  constructor(private current: number) {}

  now(): number {
    return this.current;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return;
    this.current += ms;
    // Yield to the event loop so signals and I/O can still be observed between steps.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
