// Checks ask Prometheus about windows ending at this machine's "now". A runner whose clock is ahead
// asks about a future Prometheus has not seen (every check inconclusive, then a rollback); one
// behind judges stale windows. The deploy preflight measures the skew once and refuses beyond a bound.

import { formatDuration } from '../policy/units.js';

export interface ClockSkew {
  /** This machine's time minus Prometheus's, in ms: positive when this clock is ahead. */
  skewMs: number;
  roundTripMs: number;
  /** The local time the server's answer is compared with: the middle of the round trip. */
  localMs: number;
  serverMs: number;
}

/**
 * Asks the server's time once and compares it with the local time halfway through the round trip
 * (the answer was produced somewhere in it, most likely near the middle, as NTP assumes).
 */
export async function measureClockSkew(serverTime: () => Promise<number>, now: () => number = Date.now): Promise<ClockSkew> {
  const sent = now();
  const serverMs = await serverTime();
  const received = now();
  const localMs = sent + (received - sent) / 2;
  return { skewMs: localMs - serverMs, roundTripMs: received - sent, localMs, serverMs };
}

/** The largest skew a rollout tolerates: half the query window (more, and a window is mostly misplaced). */
export function skewBoundMs(windowMs: number): number {
  return windowMs / 2;
}

/** A preflight problem when the skew is beyond the bound (the round trip's uncertainty counts in our favour), else undefined. */
export function skewProblem(skew: ClockSkew, windowMs: number, prometheus: string): string | undefined {
  const bound = skewBoundMs(windowMs);
  // The true skew is within ±roundTrip/2 of the measured one: refuse only when it is surely too big.
  if (Math.abs(skew.skewMs) - skew.roundTripMs / 2 <= bound) return undefined;
  const by = formatDuration(Math.round(Math.abs(skew.skewMs) / 1000) * 1000);
  const direction = skew.skewMs > 0 ? 'ahead of' : 'behind';
  return (
    `this machine's clock is ${by} ${direction} Prometheus's (here ${new Date(skew.localMs).toISOString()}, Prometheus at ${prometheus} ${new Date(skew.serverMs).toISOString()}, ` +
    `measured over a ${Math.round(skew.roundTripMs)} ms round trip): more than half the ${formatDuration(windowMs)} query window (${formatDuration(bound)}), ` +
    `so checks would judge windows Prometheus ${skew.skewMs > 0 ? 'has not filled yet' : 'has long closed'}; fix this machine's clock (NTP) and deploy again`
  );
}
