import { CanaryError } from '../errors.js';
import { resolveHeaders } from '../policy/headers.js';
import type { PrometheusSettings } from '../policy/policy.js';
import { MIN_BARE_SECRET, readSecret, registerBasicAuth, registerBearer, registerHeaderValue, registerUrlSecrets, unparsableUrl } from '../secrets.js';
import type { RetryPolicy } from '../retry.js';
import { QUERY_PATH } from './prometheus-answer.js';

// Where and as whom the Prometheus client connects: the base URL (its user info turned into basic
// auth), the bearer token or basic auth, the extra headers. Every credential is registered with the
// redaction boundary here, in its wire forms, before the first request can be made.

/** Its retries are the one policy type (src/retry.ts), narrowed to what a query is told. */
export interface PrometheusClientOptions extends Pick<RetryPolicy, 'baseDelayMs' | 'deadlineMs' | 'sleep' | 'now'> {
  /** Base URL, optionally with a path prefix: http://prometheus:9090, https://mimir/prometheus. */
  url: string;
  /** Longest one attempt may take (RetryPolicy.timeoutMs, required here). */
  timeoutMs: number;
  /** Extra attempts after the first, on network errors, 429 and 5xx (spec.prometheus.retries: RetryPolicy.attempts − 1). */
  retries: number;
  bearerToken?: string;
  basicAuth?: { username: string; password: string };
  /** Sent with every request, e.g. X-Scope-OrgID for Mimir/Cortex. Values are secrets unless named in publicHeaders. */
  headers?: Record<string, string>;
  /** Header names whose values may be shown (a tenant id, not a key). */
  publicHeaders?: readonly string[];
  caFile?: string;
  insecureSkipVerify?: boolean;
}

/** What the client sends to, and with. */
export interface PrometheusConnection {
  /** The query endpoint, query string (?access_token=…) included: sent, never shown. */
  endpoint: string;
  /** Base URL without credentials or query, for messages and recordings. */
  displayUrl: string;
  headers: Record<string, string>;
  basicAuth?: { username: string; password: string };
  /** This client's secrets, redacted from its answers and errors (also registered process-wide). */
  secrets: string[];
}

/** The URL with any user:password@ and query string removed and no trailing slash, safe to print and record. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    return parsed.toString().replace(/\/+$/, '');
  } catch {
    return unparsableUrl(url);
  }
}

function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CanaryError('invalid-input', `Prometheus URL ${displayUrl(raw)}: expected an http:// or https:// URL, e.g. http://prometheus.monitoring:9090`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    // Not shown: with a mistyped scheme, user info parses as a path and would be printed whole.
    throw new CanaryError('invalid-input', `Prometheus URL: expected an http:// or https:// URL, got scheme "${url.protocol.replace(/:$/, '').slice(0, 20)}" (the URL is not shown: it may hold credentials)`);
  }
  if (url.hash) throw new CanaryError('invalid-input', `Prometheus URL "${displayUrl(raw)}": expected no #fragment`);
  return url;
}

/** Checks the options and registers every credential in them; throws CanaryError (exit 2) on bad input. */
export function prometheusConnection(options: PrometheusClientOptions): PrometheusConnection {
  // Registered before anything can fail: even a URL that does not parse never reaches a message whole.
  registerUrlSecrets(options.url);
  const url = parseBaseUrl(options.url);
  if (options.bearerToken && options.basicAuth) {
    throw new CanaryError('invalid-input', 'Prometheus authentication: expected either a bearer token or basic auth, got both');
  }

  // Credentials in the URL become basic auth, so the URL itself can be printed and recorded.
  let basicAuth = options.basicAuth;
  const urlSecrets: string[] = [];
  if (url.username || url.password) {
    basicAuth ??= options.bearerToken ? undefined : { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    urlSecrets.push(decodeURIComponent(url.password), url.password);
    url.username = '';
    url.password = '';
  }
  if (basicAuth) registerBasicAuth(basicAuth.username, basicAuth.password);
  if (options.bearerToken) registerBearer(options.bearerToken);
  const queryValues = [...url.searchParams.values()].filter((v) => v.length >= MIN_BARE_SECRET);

  const publicNames = new Set((options.publicHeaders ?? []).map((n) => n.toLowerCase()));
  const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'canary' };
  const headerSecrets: string[] = [];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new CanaryError('invalid-input', `Prometheus header "${name}": expected an HTTP header name (letters, digits, "-")`);
    }
    if (/[\r\n\0]/.test(value)) {
      throw new CanaryError('invalid-input', `Prometheus header "${name}": expected a value on one line (the value is not shown)`);
    }
    if (!publicNames.has(name.toLowerCase())) {
      registerHeaderValue(name, value);
      if (value.length >= MIN_BARE_SECRET) headerSecrets.push(value);
    }
    headers[name] = value;
  }
  if (options.bearerToken) headers['Authorization'] = `Bearer ${options.bearerToken}`;

  const base = url.pathname.replace(/\/+$/, '');
  return {
    endpoint: `${url.origin}${base}${QUERY_PATH}${url.search}`,
    displayUrl: `${url.origin}${base}`,
    headers,
    ...(basicAuth && { basicAuth }),
    secrets: [options.bearerToken ?? '', basicAuth?.password ?? '', ...urlSecrets, ...queryValues, ...headerSecrets].filter(Boolean),
  };
}

/** Client options from a policy's settings, secrets read (and registered) now; `urlOverride` is --prometheus. */
export function prometheusOptionsFromSettings(settings: PrometheusSettings, urlOverride?: string): PrometheusClientOptions {
  const url = urlOverride ?? settings.url;
  if (!url) {
    throw new CanaryError('invalid-input', 'no Prometheus URL: expected --prometheus URL or spec.prometheus.url in the policy');
  }
  return {
    url,
    timeoutMs: settings.timeoutMs,
    retries: settings.retries,
    ...(settings.deadlineMs !== undefined && { deadlineMs: settings.deadlineMs }),
    ...(settings.bearerToken ? { bearerToken: readSecret(settings.bearerToken, 'spec.prometheus.bearerToken') } : {}),
    ...(settings.basicAuth
      ? { basicAuth: { username: settings.basicAuth.username, password: readSecret(settings.basicAuth.password, 'spec.prometheus.basicAuth.password') } }
      : {}),
    headers: resolveHeaders(settings.headers, 'spec.prometheus.headers'),
    publicHeaders: Object.entries(settings.headers)
      .filter(([, h]) => h.public)
      .map(([name]) => name),
    ...(settings.caFile ? { caFile: settings.caFile } : {}),
    insecureSkipVerify: settings.insecureSkipVerify,
  };
}
