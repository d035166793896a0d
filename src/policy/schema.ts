import * as z from 'zod';
import { text } from './zod-fields.js';
import { dashboardUrlSchema, incidentsSchema } from '../incident/config.js';
import { headersSchema } from './headers.js';
import { smokeTestsSchema } from './smoke-schema.js';
import { postPromotionSchema } from './post-promotion-schema.js';
import { hooksSchema } from './hooks-schema.js';
import { describeInput, parseDuration, parseFraction, parseSeconds } from './units.js';

// Every field's message says what was expected and echoes what was given, because the person
// reading it is fixing a YAML file under time pressure and should not have to guess.

const duration = (what: string, allowZero = false) =>
  z.unknown().transform((value, ctx) => {
    const ms = typeof value === 'string' ? parseDuration(value) : null;
    if (ms === null || ms < 0 || (ms === 0 && !allowZero)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected ${what} like "30s", "1m" or "1h30m", got ${describeInput(value)}`,
      });
      return z.NEVER;
    }
    return ms;
  });

const integer = (min: number, max: number) =>
  z.unknown().transform((value, ctx) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
      ctx.addIssue({ code: 'custom', message: `expected a whole number ${range}, got ${describeInput(value)}` });
      return z.NEVER;
    }
    return value;
  });

const fraction = z.unknown().transform((value, ctx) => {
  const parsed = parseFraction(value);
  if (parsed === null) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a percentage like "5%" or a fraction from 0 to 1, got ${describeInput(value)}`,
    });
    return z.NEVER;
  }
  return parsed;
});

const seconds = z.unknown().transform((value, ctx) => {
  const parsed = parseSeconds(value);
  if (parsed === null) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like "2s" or "250ms", or a number of seconds, got ${describeInput(value)}`,
    });
    return z.NEVER;
  }
  return parsed;
});

const positiveNumber = (what: string, min: number) =>
  z.unknown().transform((value, ctx) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} of at least ${min}, got ${describeInput(value)}` });
      return z.NEVER;
    }
    return value;
  });

const oneOf = <T extends string>(values: readonly [T, ...T[]]) =>
  z.unknown().transform((value, ctx) => {
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected one of ${values.map((v) => `"${v}"`).join(', ')}, got ${describeInput(value)}`,
      });
      return z.NEVER;
    }
    return value as T;
  });

// Kubernetes object names (RFC 1123 subdomain); validating them here is also what makes them
// safe to drop into PromQL regexes and label matchers.
const k8sName = z.unknown().transform((value, ctx) => {
  if (typeof value !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(value)) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a Kubernetes name (lower-case letters, digits, "-" and "."), got ${describeInput(value)}`,
    });
    return z.NEVER;
  }
  return value;
});

const bool = z.unknown().transform((value, ctx) => {
  if (typeof value !== 'boolean') {
    ctx.addIssue({ code: 'custom', message: `expected true or false, got ${describeInput(value)}` });
    return z.NEVER;
  }
  return value;
});

export const JUDGES = ['threshold', 'sequential'] as const;
export type JudgeKind = (typeof JUDGES)[number];

const metricCommon = {
  name: text('a metric name'),
  critical: bool.optional(),
  judge: oneOf(JUDGES).optional(),
};

const errorRateMetric = z
  .object({
    ...metricCommon,
    type: z.literal('error-rate'),
    /** The canary's error rate may not exceed this (fraction). */
    max: fraction.optional(),
    /** The canary's error rate may not exceed stable's by more than this many points (fraction). */
    maxIncrease: fraction.optional(),
  })
  .strict();

const latencyMetric = z
  .object({
    ...metricCommon,
    type: z.literal('latency'),
    quantile: z
      .unknown()
      .transform((value, ctx) => {
        if (typeof value !== 'number' || !(value > 0 && value < 1)) {
          ctx.addIssue({ code: 'custom', message: `expected a quantile between 0 and 1 like 0.95, got ${describeInput(value)}` });
          return z.NEVER;
        }
        return value;
      })
      .optional(),
    max: seconds.optional(),
    maxRatio: positiveNumber('a ratio to stable', 1).optional(),
  })
  .strict();

const queryMetric = z
  .object({
    ...metricCommon,
    type: z.literal('query'),
    /** A query name from the preset (e.g. "memory") or a PromQL template. */
    query: text('a query name or a PromQL template'),
    unit: oneOf(['bytes', 'cores', 'seconds', 'ratio', 'count'] as const).optional(),
    max: positiveNumber('a number', 0).optional(),
    maxRatio: positiveNumber('a ratio to stable', 0).optional(),
  })
  .strict();

export const metricSchema = z.discriminatedUnion('type', [errorRateMetric, latencyMetric, queryMetric], {
  error: (issue) =>
    issue.code === 'invalid_union'
      ? `expected type "error-rate", "latency" or "query", got ${describeInput((issue.input as Record<string, unknown> | undefined)?.['type'])}`
      : undefined,
});

const stepSchema = z
  .object({
    weight: z.unknown().transform((value, ctx) => {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 100) {
        ctx.addIssue({ code: 'custom', message: `expected a number from 1 to 100, got ${describeInput(value)}` });
        return z.NEVER;
      }
      return value;
    }),
    duration: duration('how long to hold this weight'),
    /** A manual gate once the step would advance: true waits for `canary promote`, a duration waits that long at most. */
    pause: z
      .unknown()
      .transform((value, ctx) => {
        if (value === true) return 'until-promoted' as const;
        if (value === false) return undefined;
        const ms = typeof value === 'string' ? parseDuration(value) : null;
        if (ms === null || ms <= 0) {
          ctx.addIssue({
            code: 'custom',
            message: `expected true (wait for \`canary promote\`), false, or a duration like "10m" (wait that long, or until \`canary promote\`), got ${describeInput(value)}`,
          });
          return z.NEVER;
        }
        return ms;
      })
      .optional(),
  })
  .strict();

const secretRef = z
  .object({
    env: text('an environment variable name').optional(),
    file: text('a file path').optional(),
  })
  .strict()
  .refine((ref) => Boolean(ref.env) !== Boolean(ref.file), {
    message: 'expected exactly one of "env" or "file" (secrets are never written in the policy itself)',
  });

// The URL is checked by hand: it may hold user:password@ or ?access_token=, so it is never quoted.
const prometheusUrl = z.unknown().transform((value, ctx) => {
  if (typeof value !== 'string' || value.trim() === '') {
    ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL like "http://prometheus.monitoring:9090" (the value is not shown: it may hold credentials)' });
    return z.NEVER;
  }
  return value;
});

export const prometheusSchema = z
  .object({
    url: prometheusUrl.optional(),
    timeout: duration('a request timeout').optional(),
    retries: integer(0, 10).optional(),
    /** All attempts of one query, and the waits between them, end within this (default 30 s). */
    deadline: duration('a query deadline').optional(),
    bearerToken: secretRef.optional(),
    basicAuth: z
      .object({ username: text('a user name'), password: secretRef })
      .strict()
      .optional(),
    headers: headersSchema.optional(),
    caFile: text('a file path').optional(),
    insecureSkipVerify: bool.optional(),
  })
  .strict();

/** Rollout and DORA metrics pushed to a Prometheus Pushgateway (docs/metrics.md). */
export const metricsSchema = z
  .object({
    /** The `environment` label of the DORA series (default "production"). */
    environment: text('an environment name like "production"').optional(),
    pushgateway: z
      .object({
        url: text('an http(s) URL'),
        timeout: duration('a request timeout').optional(),
        /** All attempts of one push, and the waits between them, end within this (default 10 s). */
        deadline: duration('a push deadline').optional(),
        bearerToken: secretRef.optional(),
        basicAuth: z
          .object({ username: text('a user name'), password: secretRef })
          .strict()
          .optional(),
        headers: z.record(z.string(), z.string()).optional(),
        caFile: text('a file path').optional(),
        insecureSkipVerify: bool.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const targetSchema = z
  .object({
    stableDeployment: k8sName.optional(),
    stableService: k8sName.optional(),
    stableIngress: k8sName.optional(),
    canaryDeployment: k8sName.optional(),
    canaryService: k8sName.optional(),
    canaryIngress: k8sName.optional(),
    container: k8sName.optional(),
    canaryReplicas: integer(1, 1000).optional(),
    /** Requests with this header reach the canary whatever its weight (smoke tests); removed at 0%. */
    headerRouting: z
      .object({
        header: z.unknown().transform((value, ctx) => {
          if (typeof value !== 'string' || !/^[A-Za-z0-9-]+$/.test(value)) {
            ctx.addIssue({ code: 'custom', message: `expected an HTTP header name like "X-Canary", got ${describeInput(value)}` });
            return z.NEVER;
          }
          return value;
        }),
        value: text('a header value').optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** How traffic is moved to the canary (src/k8s/router-factory.ts); separate from how it is measured (the preset). */
export const ROUTERS = ['ingress-nginx', 'gateway-api'] as const;
export type RouterName = (typeof ROUTERS)[number];

const trafficSchema = z
  .object({
    router: oneOf(ROUTERS).optional(),
    /** The HTTPRoute whose stable rule is split (gateway-api only; default the target's name). */
    httpRoute: k8sName.optional(),
  })
  .strict();

export const PRESETS = ['ingress-nginx', 'app-metrics', 'envoy-gateway', 'traefik'] as const;
export type PresetName = (typeof PRESETS)[number];

const analysisSchema = z
  .object({
    preset: oneOf(PRESETS).optional(),
    window: duration('a query window').optional(),
    minRequests: integer(0, Number.MAX_SAFE_INTEGER).optional(),
    failureLimit: integer(1, 1000).optional(),
    countFailures: oneOf(['consecutive', 'total'] as const).optional(),
    inconclusiveLimit: integer(1, 1000).optional(),
    /** Checks the rollout record keeps in full; older ones live on as counts (like Argo Rollouts' measurement history). */
    historyLimit: integer(1, 1000).optional(),
    /** How far each check's query time lags its tick, for scrape and ingestion lag (live rollouts only). */
    evaluationDelay: duration('a delay for scrape and ingestion lag', true).optional(),
    selectors: z.object({ canary: text('a PromQL label matcher'), stable: text('a PromQL label matcher') }).strict().optional(),
    queries: z.record(z.string(), z.string()).optional(),
    metrics: z.array(metricSchema).min(1, { message: 'expected at least one metric' }).optional(),
    sequential: z
      .object({
        /** Bound on rolling back a canary no worse than stable, over the whole rollout. */
        alpha: fraction.optional(),
        /** Bound on missing a canary worse by the margin. */
        beta: fraction.optional(),
        /** How far back stable's latency is read to choose the "slow request" threshold. */
        baseline: duration('a look-back window').optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const policyFileSchema = z
  .object({
    apiVersion: z.literal('canary/v1', { error: (i) => `expected "canary/v1", got ${describeInput(i.input)}` }),
    kind: z.literal('RolloutPolicy', { error: (i) => `expected "RolloutPolicy", got ${describeInput(i.input)}` }),
    metadata: z.object({ name: text('a policy name') }).strict().optional(),
    spec: z
      .object({
        target: targetSchema.optional(),
        traffic: trafficSchema.optional(),
        interval: duration('a check interval').optional(),
        steps: z.array(stepSchema).min(1, { message: 'expected at least one step' }).optional(),
        analysis: analysisSchema.optional(),
        prometheus: prometheusSchema.optional(),
        metrics: metricsSchema.optional(),
        kubernetes: z
          .object({
            /** Tries per API call at most (first included); the deadline usually ends a call first. */
            attempts: integer(1, 20).optional(),
            /** One API request longer than this is a timeout (and retried). */
            timeout: duration('a request timeout').optional(),
            /** All tries of one API call, and the waits between them, end within this; then exit 5. */
            deadline: duration('an API call deadline').optional(),
            /** How long a deploy that is stopping keeps driving the canary to 0% before it exits 5. */
            stopDeadline: duration('a stop deadline').optional(),
            /** How long a dead deploy keeps the lease; `--resume` can take over after it. */
            leaseDuration: duration('a lease duration').optional(),
            /** How long a Deployment may take to become ready. */
            readyTimeout: duration('a readiness timeout').optional(),
            pollInterval: duration('a polling interval').optional(),
          })
          .strict()
          .optional(),
        /** Where rollbacks are reported: webhook, Slack, PagerDuty, GitHub issue (src/incident/config.ts). */
        incidents: incidentsSchema.optional(),
        /** A dashboard link template for incidents and reports, e.g. Grafana with {{target}} and {{from}}. */
        dashboardUrl: dashboardUrlSchema.optional(),
        /** HTTP checks against the canary through header routing before the first raise (src/policy/smoke-schema.ts). */
        smokeTests: smokeTestsSchema.optional(),
        /** A watch of stable after promotion against its pre-rollout baseline (src/policy/post-promotion-schema.ts). */
        postPromotion: postPromotionSchema.optional(),
        /** Commands run at pre-rollout, each step, pre-promotion and post-rollout (src/policy/hooks-schema.ts). */
        hooks: hooksSchema.optional(),
      })
      .strict(),
  })
  .strict();

export type PolicyFile = z.output<typeof policyFileSchema>;
export type MetricSpecInput = z.output<typeof metricSchema>;
export type PrometheusSettingsInput = z.output<typeof prometheusSchema>;
export type SecretRef = { env?: string | undefined; file?: string | undefined };
