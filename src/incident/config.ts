import * as z from 'zod';
import { headersSchema, type HeaderSource } from '../policy/headers.js';
import type { SecretSource } from '../secrets.js';
import { describeInput, parseDuration } from '../policy/units.js';

// The policy's `spec.incidents` list and `spec.dashboardUrl` template. The schema outputs the
// resolved configuration (defaults filled in), so the loader only copies it into the Policy.
//
// Secret fields are validated by hand rather than with z.object: a token pasted into the policy
// must never be echoed back by a "expected a mapping, got ..." message in a CI log.

export const SINK_TYPES = ['webhook', 'slack', 'pagerduty', 'github-issue'] as const;
export type SinkType = (typeof SINK_TYPES)[number];

export const PAGERDUTY_SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
export type PagerDutySeverity = (typeof PAGERDUTY_SEVERITIES)[number];

export const DEFAULT_SINK_TIMEOUT_MS = 30_000;
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

interface SinkBase {
  /** Shown in messages and the job summary; defaults to the type. */
  name: string;
  /** Total time for delivery, retries included. */
  timeoutMs: number;
  /** A PEM file with the CA that signs the receiver's certificate (an internal CA), like spec.prometheus.caFile. */
  caFile?: string;
}

export interface WebhookSinkConfig extends SinkBase {
  type: 'webhook';
  /** A plain URL, or where to read it when it carries a token. */
  url: string | SecretSource;
  /** Key for the X-Canary-Signature-256 HMAC. */
  secret?: SecretSource;
  /** Values are secrets unless marked public (src/policy/headers.ts). */
  headers: Record<string, HeaderSource>;
}

export interface SlackSinkConfig extends SinkBase {
  type: 'slack';
  /** An incoming-webhook URL is itself a credential, so it is always read from env or a file. */
  webhookUrl: SecretSource;
}

export interface PagerDutySinkConfig extends SinkBase {
  type: 'pagerduty';
  routingKey: SecretSource;
  severity: PagerDutySeverity;
  /** Events API v2 endpoint (the EU service uses https://events.eu.pagerduty.com/v2/enqueue). */
  url: string;
}

export interface GitHubIssueSinkConfig extends SinkBase {
  type: 'github-issue';
  /** owner/name; when absent, GITHUB_REPOSITORY at delivery time. */
  repository?: string;
  labels: string[];
  token: SecretSource;
  /** REST API base; when absent, GITHUB_API_URL, else https://api.github.com. */
  apiUrl?: string;
}

export type IncidentSinkConfig = WebhookSinkConfig | SlackSinkConfig | PagerDutySinkConfig | GitHubIssueSinkConfig;

/**
 * What was given, without the value: any field here can hold a pasted token (a URL with a key in
 * it, a routing key in the wrong place), and the error goes to a CI log.
 */
function shape(value: unknown): string {
  if (value === undefined || value === null) return 'nothing';
  if (typeof value === 'string') return 'a string that does not fit (not shown: it may be a secret)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value}`;
}

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const SECRET_HINT = 'expected { env: VARIABLE } or { file: PATH } (the value is not shown: it may be a secret, and secrets never go in the policy)';

function asSecretSource(value: unknown): SecretSource | null {
  if (!isPlain(value)) return null;
  const keys = Object.keys(value);
  if (keys.length !== 1) return null;
  const env = value['env'];
  const file = value['file'];
  if (typeof env === 'string' && env.trim()) return { env };
  if (typeof file === 'string' && file.trim()) return { file };
  return null;
}

const secretSource = z.unknown().transform((value, ctx): SecretSource => {
  const ref = asSecretSource(value);
  if (!ref) {
    ctx.addIssue({ code: 'custom', message: SECRET_HINT });
    return z.NEVER;
  }
  return ref;
});

/** user:password@ in a URL: fetch rejects it with an error quoting the whole URL. */
function hasCredentials(url: string): boolean {
  try {
    const u = new URL(url);
    return Boolean(u.username || u.password);
  } catch {
    return false;
  }
}

const CREDENTIALS_IN_URL = 'credentials in the webhook URL are not supported; sign with secret or use headers (the URL is not shown: it holds a password)';

const httpUrl = (what: string) =>
  z.unknown().transform((value, ctx): string => {
    if (typeof value !== 'string' || !/^https?:\/\/[^\s/]+/.test(value)) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} starting with http:// or https://, got ${shape(value)}` });
      return z.NEVER;
    }
    if (hasCredentials(value)) {
      ctx.addIssue({ code: 'custom', message: `${what} with a user name or password: ${CREDENTIALS_IN_URL}` });
      return z.NEVER;
    }
    return value;
  });

const text = (what: string) =>
  z.unknown().transform((value, ctx): string => {
    if (typeof value !== 'string' || value.trim() === '') {
      ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${shape(value)}` });
      return z.NEVER;
    }
    return value;
  });

const timeout = z.unknown().transform((value, ctx): number => {
  const ms = typeof value === 'string' ? parseDuration(value) : null;
  if (ms === null || ms < 1000 || ms > 600_000) {
    ctx.addIssue({ code: 'custom', message: `expected a total delivery time from "1s" to "10m" like "30s", got ${typeof value === 'string' && value.length <= 12 ? describeInput(value) : shape(value)}` });
    return z.NEVER;
  }
  return ms;
});

const common = { name: text('a sink name').optional(), timeout: timeout.optional(), caFile: text('a path to a PEM file with the CA certificate').optional() };

const webhookSchema = z
  .object({
    ...common,
    type: z.literal('webhook'),
    url: z.unknown().transform((value, ctx): string | SecretSource => {
      if (typeof value === 'string') {
        if (/^https?:\/\/[^\s/]+/.test(value) && hasCredentials(value)) {
          ctx.addIssue({ code: 'custom', message: `a URL with a user name or password: ${CREDENTIALS_IN_URL}` });
          return z.NEVER;
        }
        if (/^https?:\/\/[^\s/]+/.test(value)) return value;
        ctx.addIssue({ code: 'custom', message: `expected a URL starting with http:// or https://, or { env: VARIABLE } / { file: PATH }, got ${shape(value)}` });
        return z.NEVER;
      }
      const ref = asSecretSource(value);
      if (ref) return ref;
      ctx.addIssue({ code: 'custom', message: `expected a URL or ${SECRET_HINT}` });
      return z.NEVER;
    }),
    secret: secretSource.optional(),
    headers: headersSchema.optional(),
  })
  .strict();

const slackSchema = z
  .object({
    ...common,
    type: z.literal('slack'),
    webhookUrl: z.unknown().transform((value, ctx): SecretSource => {
      const ref = asSecretSource(value);
      if (ref) return ref;
      // The URL itself is the credential: say so without repeating it.
      ctx.addIssue({
        code: 'custom',
        message: `a Slack incoming-webhook URL is a secret: ${SECRET_HINT}`,
      });
      return z.NEVER;
    }),
  })
  .strict();

const pagerDutySchema = z
  .object({
    ...common,
    type: z.literal('pagerduty'),
    routingKey: secretSource,
    severity: z
      .unknown()
      .transform((value, ctx): PagerDutySeverity => {
        if (typeof value === 'string' && (PAGERDUTY_SEVERITIES as readonly string[]).includes(value)) return value as PagerDutySeverity;
        ctx.addIssue({ code: 'custom', message: `expected one of ${PAGERDUTY_SEVERITIES.map((s) => `"${s}"`).join(', ')}, got ${shape(value)}` });
        return z.NEVER;
      })
      .optional(),
    url: httpUrl('the Events API v2 URL').optional(),
  })
  .strict();

const githubIssueSchema = z
  .object({
    ...common,
    type: z.literal('github-issue'),
    repository: z
      .unknown()
      .transform((value, ctx): string => {
        if (typeof value === 'string' && /^[\w.-]+\/[\w.-]+$/.test(value)) return value;
        ctx.addIssue({ code: 'custom', message: `expected a repository like "acme/shop", got ${shape(value)}` });
        return z.NEVER;
      })
      .optional(),
    labels: z.array(text('a label name')).optional(),
    token: secretSource.optional(),
    apiUrl: httpUrl('the GitHub REST API URL').optional(),
  })
  .strict();

const sinkSchema = z.discriminatedUnion('type', [webhookSchema, slackSchema, pagerDutySchema, githubIssueSchema], {
  error: (issue) =>
    issue.code === 'invalid_union'
      ? `expected type ${SINK_TYPES.map((t) => `"${t}"`).join(', ')}, got ${typeOf((issue.input as Record<string, unknown> | undefined)?.['type'])}`
      : undefined,
});

/** A sink type as given: quoted when it looks like a type name, else described (it may be a pasted secret). */
function typeOf(value: unknown): string {
  return typeof value === 'string' && /^[a-z][a-z-]{0,30}$/.test(value) ? describeInput(value) : shape(value);
}

type SinkInput = z.output<typeof sinkSchema>;

function resolveSink(s: SinkInput): IncidentSinkConfig {
  const base = { name: s.name ?? s.type, timeoutMs: s.timeout ?? DEFAULT_SINK_TIMEOUT_MS, ...(s.caFile !== undefined && { caFile: s.caFile }) };
  switch (s.type) {
    case 'webhook':
      return { ...base, type: 'webhook', url: s.url, headers: s.headers ?? {}, ...(s.secret && { secret: s.secret }) };
    case 'slack':
      return { ...base, type: 'slack', webhookUrl: s.webhookUrl };
    case 'pagerduty':
      return { ...base, type: 'pagerduty', routingKey: s.routingKey, severity: s.severity ?? 'critical', url: s.url ?? PAGERDUTY_EVENTS_URL };
    case 'github-issue':
      return {
        ...base,
        type: 'github-issue',
        labels: s.labels ?? ['canary', 'incident'],
        token: s.token ?? { env: 'GITHUB_TOKEN' },
        ...(s.repository !== undefined && { repository: s.repository }),
        ...(s.apiUrl !== undefined && { apiUrl: s.apiUrl }),
      };
  }
}

/** `spec.incidents`: any number of sinks, each named uniquely (the name is the type by default). */
export const incidentsSchema = z.array(sinkSchema).transform((sinks, ctx): IncidentSinkConfig[] => {
  const resolved = sinks.map(resolveSink);
  const seen = new Set<string>();
  resolved.forEach((sink, i) => {
    if (seen.has(sink.name)) {
      ctx.addIssue({
        code: 'custom',
        path: [i, 'name'],
        message: `"${sink.name}" names two sinks; give each sink of the same type its own "name"`,
      });
    }
    seen.add(sink.name);
  });
  return resolved;
});

/** Placeholders a dashboard URL template may use; values are URL-encoded when substituted. */
export const DASHBOARD_PLACEHOLDERS = ['target', 'namespace', 'rolloutId', 'image', 'from', 'to', 'startedAt', 'endedAt'] as const;

export function unknownDashboardPlaceholders(template: string): string[] {
  const names = [...template.matchAll(/\{\{\s*([^}\s]*)\s*\}\}/g)].map((m) => m[1] ?? '');
  return [...new Set(names.filter((n) => !(DASHBOARD_PLACEHOLDERS as readonly string[]).includes(n)))];
}

/** `spec.dashboardUrl`, e.g. "https://grafana.example.com/d/canary?var-target={{target}}&from={{from}}&to={{to}}". */
export const dashboardUrlSchema = z.unknown().transform((value, ctx): string => {
  if (typeof value !== 'string' || !/^https?:\/\/[^\s/]+/.test(value)) {
    ctx.addIssue({ code: 'custom', message: `expected a URL template starting with http:// or https://, got ${shape(value)}` });
    return z.NEVER;
  }
  const unknown = unknownDashboardPlaceholders(value);
  if (unknown.length) {
    ctx.addIssue({
      code: 'custom',
      message: `unknown placeholder ${unknown.map((u) => `{{${u}}}`).join(', ')}; expected any of ${DASHBOARD_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}`,
    });
    return z.NEVER;
  }
  return value;
});
