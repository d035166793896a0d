// Number formatting for the judges' plain-words explanations: rates as percentages, differences
// as signed points, confidence as a percentage without false precision, and where the evidence
// behind a decision starts.

import type { SpanState } from './change-point.js';

/** Where the evidence behind a decision starts, so an explanation can name it. */
export interface EvidenceOrigin {
  /** 0-based index of the first window (among the windows the judge was shown). */
  window: number;
  /** Windows from there to now, inclusive. */
  windows: number;
  /** Step of the first window, and its position in that step (0 = the step's first window). */
  step: number;
  windowInStep: number;
  /** When the first window's counts begin, if the caller said. */
  startedAt?: Date;
}

export function originOf(span: SpanState): EvidenceOrigin {
  return {
    window: span.window,
    windows: span.windows,
    step: span.step,
    windowInStep: span.windowInStep,
    ...(span.startedAt ? { startedAt: new Date(span.startedAt) } : {}),
  };
}

export function percent(fraction: number): string {
  const value = fraction * 100;
  if (value === 0) return '0%';
  return `${Math.abs(value) >= 1 ? value.toFixed(1) : value.toFixed(2)}%`;
}

/** A difference of two rates in percentage points, signed: "+3.2 points". */
export function points(fraction: number): string {
  const value = fraction * 100;
  const digits = Math.abs(value) >= 1 || value === 0 ? 1 : 2;
  const text = value.toFixed(digits);
  // A difference that rounds to nothing has no sign ("−0.00 points" reads as a glitch).
  if (Number(text) === 0) return '0 points';
  return `${value >= 0 && !text.startsWith('-') ? '+' : ''}${text.replace('-', '−')} points`;
}

/** "3-point" for a margin of 0.03, "0.5-point" for 0.005. */
export function marginWords(fraction: number): string {
  const value = fraction * 100;
  return `${Number.isInteger(value) ? value.toFixed(0) : Number(value.toPrecision(2)).toString()}-point`;
}

export function confidenceWords(level: number): string {
  const value = level * 100;
  const text = Number.isInteger(value) ? value.toFixed(0) : Number(value.toFixed(1)).toString();
  return `${text}%`;
}

export function ratioWords(evidence: number): string {
  if (!Number.isFinite(evidence) || evidence >= 1e6) return 'over 1,000,000:1';
  if (evidence >= 10) return `${Math.round(evidence).toLocaleString('en-US')}:1`;
  if (evidence >= 1) return `${evidence.toFixed(1)}:1`;
  return `1:${(1 / Math.max(evidence, 1e-6)).toFixed(1)}`;
}

export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** "1 canary request", "2 canary requests": a count with its noun in the right number. */
export function plural(value: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count(value)} ${Math.round(value) === 1 ? singular : pluralForm}`;
}

export function ordinal(value: number): string {
  const n = Math.round(value);
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/** "10:21 UTC": the clock time an operator finds on the dashboard (UTC, as the reports' timestamps). */
export function clockTime(at: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(at.getUTCHours())}:${two(at.getUTCMinutes())} UTC`;
}

/**
 * Which checks a decision rests on: "over the last 2 checks, since 10:20 UTC (step 2, its 6th
 * check)". A regression that began mid-step is named by when it began, not by the step, so the
 * operator looks at the right minutes.
 */
export function evidenceOriginWords(origin: EvidenceOrigin): string {
  const at = origin.startedAt ? clockTime(origin.startedAt) : null;
  const lastChecks = origin.windows <= 1 ? 'the last check' : `the last ${count(origin.windows)} checks`;
  if (origin.window === 0) {
    return origin.windows <= 1
      ? `over the first check of the rollout${at ? ` (since ${at})` : ''}`
      : `over all ${count(origin.windows)} checks since the rollout began${at ? ` at ${at}` : ''}`;
  }
  const step = `step ${origin.step + 1}`;
  if (origin.windowInStep === 0) return `over ${lastChecks}, since ${step} began${at ? ` at ${at}` : ''}`;
  const place = `${step}, its ${ordinal(origin.windowInStep + 1)} check`;
  return at ? `over ${lastChecks}, since ${at} (${place})` : `over ${lastChecks}, from ${place}`;
}

/**
 * What an inconclusive check still needs, in words: a count with the right plural, how many
 * checks that is at the latest window's traffic, and "nearly settled" when the next check should
 * decide rather than a number that looks precise ("about 1 more canary requests").
 */
export function moreRequestsWords(needed: number | undefined, lastWindowRequests: number): string {
  if (needed === undefined || !Number.isFinite(needed)) return '';
  if (needed <= 0) return '; nearly settled: the next check or two should decide';
  const requests = `about ${plural(needed, 'more canary request')}`;
  if (lastWindowRequests > 0 && needed <= lastWindowRequests) return `; nearly settled: ${requests}, likely within the next check`;
  if (!(lastWindowRequests > 0)) return `; ${requests} needed`;
  const checks = Math.ceil(needed / lastWindowRequests);
  const when = checks > 100 ? 'more than 100 checks' : `about ${plural(checks, 'check')}`;
  return `; ${requests} needed (${when} at the current traffic)`;
}
