import * as z from 'zod';
import { text } from './zod-fields.js';
import { describeInput, parseDuration } from './units.js';

// spec.postPromotion: after stable runs the new image, keep comparing stable with itself before
// the rollout, and set it back to the previous image on a breach (docs/post-promotion.md).

export interface PostPromotionSettings {
  /** How long the watch lasts after promotion. */
  durationMs: number;
  /** One check per interval, each over the interval just past (default spec.interval). */
  intervalMs: number;
  /** Stable's window before the rollout that the baseline is measured over. */
  baselineMs: number;
  /** Names of spec.analysis.metrics (error-rate and latency) whose limits the watch applies. */
  metrics: string[];
  /** Breaching checks in a row that set stable back. */
  failureLimit: number;
}

export const DEFAULT_BASELINE_MS = 30 * 60_000;
/** Two in a row: one minute's spike is not a regression, and each check is a fresh fixed-threshold test. */
export const DEFAULT_WATCH_FAILURE_LIMIT = 2;

const durationOf = (what: string) =>
  z.unknown().transform((value, ctx) => {
    const ms = typeof value === 'string' ? parseDuration(value) : null;
    if (ms === null || ms <= 0) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} like "30s", "10m" or "1h", got ${describeInput(value)}` });
      return z.NEVER;
    }
    return ms;
  });

export const postPromotionSchema = z
  .object({
    duration: durationOf('how long to watch stable after promotion'),
    interval: durationOf('a check interval').optional(),
    baseline: durationOf("how far back before the rollout stable's baseline is measured").optional(),
    metrics: z.array(text('a metric name from spec.analysis.metrics')).min(1, { message: 'expected at least one metric name, or leave metrics out to watch the error-rate and latency metrics' }).optional(),
    failureLimit: z
      .unknown()
      .transform((value, ctx) => {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 100) {
          ctx.addIssue({ code: 'custom', message: `expected a whole number from 1 to 100 (breaching checks in a row), got ${describeInput(value)}` });
          return z.NEVER;
        }
        return value;
      })
      .optional(),
  })
  .strict();

export type PostPromotionInput = z.output<typeof postPromotionSchema>;

/** The fields of a policy metric the watch reads (structural, so this module imports no policy types). */
export interface MetricLimits {
  name: string;
  type: string;
  critical: boolean;
  max?: number;
  maxIncrease?: number;
  maxRatio?: number;
}

const watchable = (m: MetricLimits) => m.type === 'error-rate' || m.type === 'latency';

/** The settings with their defaults: metric names are checked by checkPostPromotion. */
export function resolvePostPromotion(input: PostPromotionInput, intervalMs: number, metrics: readonly MetricLimits[]): PostPromotionSettings {
  return {
    durationMs: input.duration,
    intervalMs: input.interval ?? intervalMs,
    baselineMs: input.baseline ?? DEFAULT_BASELINE_MS,
    metrics: input.metrics ?? metrics.filter((m) => watchable(m) && m.critical).map((m) => m.name),
    failureLimit: input.failureLimit ?? DEFAULT_WATCH_FAILURE_LIMIT,
  };
}

/** Problems a field-by-field parse cannot see: names that are not watchable metrics, a watch shorter than one check. */
export function checkPostPromotion(settings: PostPromotionSettings | undefined, metrics: readonly MetricLimits[], problems: string[]): void {
  if (!settings) return;
  const names = metrics.filter(watchable).map((m) => m.name);
  const listed = names.length ? names.map((n) => `"${n}"`).join(', ') : 'none';
  if (settings.metrics.length === 0) {
    problems.push(`spec.postPromotion.metrics: the policy has no critical error-rate or latency metric to watch; name one of spec.analysis.metrics (error-rate or latency: ${listed})`);
  }
  settings.metrics.forEach((name, i) => {
    const metric = metrics.find((m) => m.name === name);
    if (!metric || !watchable(metric)) {
      problems.push(`spec.postPromotion.metrics[${i}]: expected the name of an error-rate or latency metric of spec.analysis.metrics (${listed}), got "${name}"`);
    } else if (metric.max === undefined && (metric.type === 'error-rate' ? metric.maxIncrease === undefined : metric.maxRatio === undefined)) {
      problems.push(`spec.postPromotion.metrics[${i}]: metric "${name}" has no limit (max, ${metric.type === 'error-rate' ? 'maxIncrease' : 'maxRatio'}) for the watch to apply`);
    }
  });
  if (settings.durationMs < settings.intervalMs) {
    problems.push(`spec.postPromotion.duration: expected at least one interval (${settings.intervalMs / 1000}s), so that the watch makes at least one check`);
  }
}
