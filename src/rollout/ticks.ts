// The rollout engine: when checks happen (absolute ticks from a weight change).

/**
 * Check times on absolute ticks: tick k is at start + k × interval. A check that runs past the
 * next tick skips to the first tick still ahead, rather than firing late checks back to back.
 */
export class TickSchedule {
  /** The number of the next tick (1-based). */
  tick = 1;

  constructor(
    readonly start: number,
    readonly intervalMs: number,
  ) {}

  get next(): number {
    return this.start + this.tick * this.intervalMs;
  }

  /** Moves on to the next tick, or past `now` when the check overran it; returns how many ticks were skipped. */
  advance(now: number): number {
    const following = this.tick + 1;
    // A check that ended exactly on the following tick has not overrun it.
    this.tick = now > this.start + following * this.intervalMs ? Math.floor((now - this.start) / this.intervalMs) + 1 : following;
    return this.tick - following;
  }
}
