// The one start time of the unit tests' virtual clocks and records, so a record built by hand and
// one written by the engine on a VirtualClock agree on what "minute 0" is.

/** 2026-01-15 10:00:00 UTC, in ms since the epoch. */
export const START = Date.parse('2026-01-15T10:00:00Z');
