// Parsers for the human units a policy is written in. They return null on bad input so the
// schema can phrase the error with the field's path and what was expected.

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const DURATION_WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "15m", "1h30m", "90s", "250ms" → milliseconds. */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (!DURATION_WHOLE.test(trimmed)) return null;
  let total = 0;
  for (const match of trimmed.matchAll(DURATION_PART)) {
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? Number.NaN);
  }
  return Number.isFinite(total) ? total : null;
}

/** Milliseconds → the shortest exact form ("15m", "1h30m", "45s"). */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms % 1000 !== 0) return `${ms}ms`;
  let seconds = ms / 1000;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  return `${hours ? `${hours}h` : ''}${minutes ? `${minutes}m` : ''}${seconds ? `${seconds}s` : ''}`;
}

/** PromQL range selectors accept only whole units; render a window the way Prometheus wants it. */
export function promDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** "5%" → 0.05; a bare number must already be a fraction in [0, 1]. */
export function parseFraction(value: unknown): number | null {
  if (typeof value === 'number') return value >= 0 && value <= 1 ? value : null;
  if (typeof value !== 'string') return null;
  const match = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
  if (!match) return null;
  const fraction = Number(match[1]) / 100;
  return fraction <= 1 ? fraction : null;
}

/** "2s", "250ms" or a number of seconds → seconds. */
export function parseSeconds(value: unknown): number | null {
  if (typeof value === 'number') return value > 0 && Number.isFinite(value) ? value : null;
  if (typeof value !== 'string') return null;
  const ms = parseDuration(value);
  return ms !== null && ms > 0 ? ms / 1000 : null;
}

/** How a bad value is shown back to the operator: strings quoted, the rest as JSON. */
export function describeInput(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 60 ? `${json.slice(0, 57)}...` : json;
  } catch {
    return String(value);
  }
}
