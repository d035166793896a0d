import { CanaryError } from '../errors.js';
import { HttpTransport } from '../http-transport.js';
import type { PrometheusSettings } from '../policy/policy.js';
import { Deadline, parseRetryAfter, retry, RetryError, systemRetryClock, type Classification } from '../retry.js';
import { MIN_BARE_SECRET, readSecret, redact, registerUrlSecrets } from '../secrets.js';
import type { InstantSample, MetricsSource, QueryResult } from './types.js';

// The Prometheus HTTP API client. It is split in two so recordings hold exactly what came over the
// wire: `queryRaw` does the HTTP (with retries) and returns the raw answer; `parseQueryResponse`
// is the pure step that turns any raw answer — live or replayed — into samples or an error.

export interface PrometheusClientOptions {
  /** Base URL, optionally with a path prefix: http://prometheus:9090, https://mimir/prometheus. */
  url: string;
  timeoutMs: number;
  /** Extra attempts after the first, on network errors, 429 and 5xx. */
  retries: number;
  bearerToken?: string;
  basicAuth?: { username: string; password: string };
  /** Sent with every request, e.g. X-Scope-OrgID for Mimir/Cortex, THANOS-TENANT for Thanos. */
  headers?: Record<string, string>;
  caFile?: string;
  insecureSkipVerify?: boolean;
  /** Base of the exponential backoff between attempts (default 500 ms); jittered. */
  backoffMs?: number;
  /** All attempts of one query and the waits between them end within this (default 30 s). */
  deadlineMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** The clock the deadline is judged on (tests). */
  now?: () => number;
}

/** What one query got back, as a recording stores it. */
export interface RawAnswer {
  /** HTTP status; 0 when no HTTP answer arrived (refused, reset, timed out, TLS). */
  status: number;
  /** The body parsed as JSON when it is JSON, else its text (shortened), or null when empty. */
  body: unknown;
  /** Why there is no usable HTTP answer (network errors, redirects), in operator words. */
  error?: string;
  /** How many attempts were made to get this answer. */
  attempts?: number;
}

/** The layer a recorder wraps: raw answers plus the URL to name in messages. */
export interface RawQuerier {
  readonly displayUrl: string;
  queryRaw(promql: string, at: Date): Promise<RawAnswer>;
}

export interface AnswerContext {
  query: string;
  at: Date;
  /** Prometheus URL without credentials, for messages. */
  url?: string;
}

const DEFAULT_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;
export const DEFAULT_QUERY_DEADLINE_MS = 30_000;
const MAX_TEXT_BODY = 2000;
const QUERY_PATH = '/api/v1/query';

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The URL with any user:password@ and query string removed and no trailing slash, safe to print and record. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    return parsed.toString().replace(/\/+$/, '');
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//').replace(/\?.*$/, '');
  }
}

export class PrometheusClient implements MetricsSource, RawQuerier {
  readonly displayUrl: string;
  private readonly endpoint: string;
  private readonly transport: HttpTransport;
  private readonly secrets: string[];
  private readonly attempts: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;
  private readonly deadlineMs: number;
  private readonly sleep: ((ms: number) => Promise<void>) | undefined;
  private readonly now: () => number;

  constructor(options: PrometheusClientOptions) {
    const url = parseBaseUrl(options.url);
    // The query string can carry a token (?access_token=…) and the URL user:password: every
    // message, answer and recording is redacted of them, whichever path an error takes.
    registerUrlSecrets(options.url);
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new CanaryError('invalid-input', `Prometheus timeout: expected a positive number of milliseconds, got ${options.timeoutMs}`);
    }
    if (!Number.isInteger(options.retries) || options.retries < 0) {
      throw new CanaryError('invalid-input', `Prometheus retries: expected a whole number ≥ 0, got ${options.retries}`);
    }
    if (options.bearerToken && options.basicAuth) {
      throw new CanaryError('invalid-input', 'Prometheus authentication: expected either a bearer token or basic auth, got both');
    }

    // Credentials in the URL become basic auth, so the URL itself can be printed and recorded.
    let basicAuth = options.basicAuth;
    const urlSecrets: string[] = [];
    if (url.username || url.password) {
      basicAuth ??= options.bearerToken
        ? undefined
        : { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      urlSecrets.push(decodeURIComponent(url.password), url.password);
      url.username = '';
      url.password = '';
    }
    const queryValues = [...url.searchParams.values()].filter((v) => v.length >= MIN_BARE_SECRET);
    this.secrets = [options.bearerToken ?? '', basicAuth?.password ?? '', ...urlSecrets, ...queryValues].filter(Boolean);

    const base = url.pathname.replace(/\/+$/, '');
    this.endpoint = `${url.origin}${base}${QUERY_PATH}${url.search}`;
    // The query string can carry a token (?access_token=…); it is sent, never shown or recorded.
    this.displayUrl = `${url.origin}${base}`;
    this.attempts = options.retries + 1;
    this.timeoutMs = options.timeoutMs;
    this.backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.deadlineMs = options.deadlineMs ?? DEFAULT_QUERY_DEADLINE_MS;
    this.sleep = options.sleep;
    this.now = options.now ?? Date.now;

    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'canary' };
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
        throw new CanaryError('invalid-input', `Prometheus header "${name}": expected an HTTP header name (letters, digits, "-")`);
      }
      if (/[\r\n\0]/.test(value)) {
        throw new CanaryError('invalid-input', `Prometheus header "${name}": expected a value on one line`);
      }
      headers[name] = value;
    }
    if (options.bearerToken) headers.Authorization = `Bearer ${options.bearerToken}`;

    this.transport = new HttpTransport({
      ...(url.protocol === 'https:' && options.caFile ? { caFile: options.caFile, caWhat: 'Prometheus caFile' } : {}),
      insecureSkipVerify: options.insecureSkipVerify ?? false,
      axios: {
        headers,
        ...(basicAuth ? { auth: basicAuth } : {}),
        // Every status is an answer to interpret (and to record); we parse the body ourselves.
        validateStatus: () => true,
        responseType: 'text',
        transformResponse: [(data: unknown) => data],
        // A redirect here is nearly always a login proxy; following it would POST our query to it.
        maxRedirects: 0,
        transitional: { clarifyTimeoutError: true, silentJSONParsing: true, forcedJSONParsing: false },
      },
    });
  }

  /** Sends the instant query, retrying network errors, 429 and 5xx with backoff; never throws for those. */
  async queryRaw(promql: string, at: Date): Promise<RawAnswer> {
    const time = at.getTime();
    if (!Number.isFinite(time)) throw new CanaryError('invalid-input', `query time is not a valid date (query: ${promql})`);
    const form = new URLSearchParams({
      query: promql,
      time: (time / 1000).toFixed(3),
      // Prometheus's duration parser takes "2500ms" but not "2.5s"; whole milliseconds always parse.
      timeout: `${Math.max(1, Math.round(this.timeoutMs))}ms`,
    }).toString();

    const sleep = this.sleep;
    const deadline = new Deadline(this.now, this.deadlineMs, `the ${this.deadlineMs / 1000}s deadline for one query (spec.prometheus.deadline)`);
    try {
      const { value, attempts } = await retry(
        async ({ signal, timeoutMs }) => {
          const { answer, retryable, retryAfterMs } = await this.attempt(form, signal, timeoutMs);
          if (retryable) throw new RetryableAnswer(answer, retryAfterMs);
          return answer;
        },
        {
          deadlineMs: this.deadlineMs,
          deadline,
          maxAttempts: this.attempts,
          attemptTimeoutMs: this.timeoutMs,
          baseDelayMs: this.backoffMs,
          maxDelayMs: MAX_BACKOFF_MS,
          classify: classifyAnswer,
          clock: { now: this.now, sleep: sleep ? (ms) => sleep(ms) : systemRetryClock.sleep },
          timeoutError: (ms) => new RetryableAnswer({ status: 0, body: null, error: `no answer within ${ms} ms` }),
        },
      );
      return { ...value, attempts };
    } catch (err) {
      if (!(err instanceof RetryError)) throw err;
      const answer = err.last instanceof RetryableAnswer ? err.last.answer : { status: 0, body: null, error: redact(err.last instanceof Error ? err.last.message : String(err.last), this.secrets) };
      // Stopped by the deadline rather than by the attempts: say so with the last error.
      const why = err.reason === 'deadline' ? `; ${err.why}` : '';
      return { ...answer, ...(answer.status === 0 && why ? { error: `${answer.error ?? 'no answer'}${why}` } : {}), attempts: err.attempts };
    } finally {
      deadline.dispose();
    }
  }

  async query(promql: string, at: Date): Promise<QueryResult> {
    const answer = await this.queryRaw(promql, at);
    try {
      return parseQueryResponse(answer, { query: promql, at, url: this.displayUrl });
    } catch (err) {
      if (err instanceof CanaryError) {
        throw new CanaryError(err.kind, redact(err.message, this.secrets), err.details.map((d) => redact(d, this.secrets)));
      }
      throw err;
    }
  }

  /**
   * Prometheus's own clock, in ms: `time()` sent without a time parameter, so the server evaluates
   * it at its now. One try: the clock-skew preflight measures the round trip around it.
   */
  async serverTime(): Promise<number> {
    const form = new URLSearchParams({ query: 'time()', timeout: `${Math.max(1, Math.round(this.timeoutMs))}ms` }).toString();
    // One bounded try: a slow answer only widens the round trip, which the skew check allows for.
    const controller = new AbortController();
    const { answer } = await this.attempt(form, controller.signal, this.timeoutMs);
    const result = parseQueryResponse(answer, { query: 'time()', at: new Date(), url: this.displayUrl });
    const value = result.samples[0]?.value;
    if (value === undefined || value === null || !Number.isFinite(value)) {
      throw new CanaryError('query-failed', `Prometheus at ${this.displayUrl} answered time() without a number`);
    }
    return value * 1000;
  }

  /** Releases kept-alive connections so the process can exit promptly. */
  close(): void {
    this.transport.close();
  }

  private async attempt(form: string, signal: AbortSignal, timeoutMs: number): Promise<{ answer: RawAnswer; retryable: boolean; retryAfterMs?: number }> {
    try {
      const res = await this.transport.http.post<string>(this.endpoint, form, {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        signal,
        timeout: Math.max(1, Math.ceil(timeoutMs)),
      });
      const status = res.status;
      const answer: RawAnswer = { status, body: this.bodyOf(typeof res.data === 'string' ? res.data : '') };
      if (status >= 300 && status < 400) {
        const location = res.headers['location'];
        answer.error = `redirected${typeof location === 'string' ? ` to ${locationForMessage(location)}` : ''}`;
      }
      const retryAfter = res.headers['retry-after'];
      const retryAfterMs = typeof retryAfter === 'string' ? parseRetryAfter(retryAfter, Date.now()) : undefined;
      return { answer, retryable: status >= 500 || status === 429, ...(retryAfterMs !== undefined && { retryAfterMs }) };
    } catch (err) {
      const { message, retryable } = describeNetworkError(err, Math.round(timeoutMs));
      return { answer: { status: 0, body: null, error: redact(message, this.secrets) }, retryable };
    }
  }

  private bodyOf(text: string): unknown {
    const clean = redact(text, this.secrets);
    if (!clean.trim()) return null;
    try {
      return JSON.parse(clean) as unknown;
    } catch {
      return clean.length > MAX_TEXT_BODY ? `${clean.slice(0, MAX_TEXT_BODY)}…` : clean;
    }
  }

}

/** An answer worth another attempt (network error, 429, 5xx), carried through the retry loop. */
class RetryableAnswer extends Error {
  constructor(
    readonly answer: RawAnswer,
    readonly retryAfterMs?: number,
  ) {
    super(answer.error ?? `HTTP ${answer.status}`);
  }
}

function classifyAnswer(err: unknown): Classification {
  if (!(err instanceof RetryableAnswer)) return 'fatal';
  return err.retryAfterMs === undefined ? 'retryable' : { retryAfterMs: err.retryAfterMs };
}

/** Builds a client from a policy's settings; `urlOverride` is the --prometheus flag. */
export function prometheusClientFromSettings(
  settings: PrometheusSettings,
  urlOverride?: string,
  extra: Pick<PrometheusClientOptions, 'backoffMs' | 'sleep' | 'now'> = {},
): PrometheusClient {
  const url = urlOverride ?? settings.url;
  if (!url) {
    throw new CanaryError('invalid-input', 'no Prometheus URL: expected --prometheus URL or spec.prometheus.url in the policy');
  }
  return new PrometheusClient({
    url,
    timeoutMs: settings.timeoutMs,
    retries: settings.retries,
    ...(settings.deadlineMs !== undefined && { deadlineMs: settings.deadlineMs }),
    ...(settings.bearerToken ? { bearerToken: readSecret(settings.bearerToken, 'spec.prometheus.bearerToken') } : {}),
    ...(settings.basicAuth
      ? {
          basicAuth: {
            username: settings.basicAuth.username,
            password: readSecret(settings.basicAuth.password, 'spec.prometheus.basicAuth.password'),
          },
        }
      : {}),
    headers: settings.headers,
    ...(settings.caFile ? { caFile: settings.caFile } : {}),
    insecureSkipVerify: settings.insecureSkipVerify,
    ...extra,
  });
}

function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CanaryError('invalid-input', `Prometheus URL "${displayUrl(raw)}": expected an http:// or https:// URL, e.g. http://prometheus.monitoring:9090`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CanaryError('invalid-input', `Prometheus URL "${displayUrl(raw)}": expected an http:// or https:// URL, got scheme "${url.protocol.replace(/:$/, '')}"`);
  }
  if (url.hash) throw new CanaryError('invalid-input', `Prometheus URL "${displayUrl(raw)}": expected no #fragment`);
  return url;
}

function locationForMessage(location: string): string {
  try {
    const parsed = new URL(location, 'http://placeholder');
    return parsed.origin === 'http://placeholder' ? parsed.pathname : `${parsed.origin}${parsed.pathname}`;
  } catch {
    return 'another address';
  }
}

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

function describeNetworkError(err: unknown, timeoutMs: number): { message: string; retryable: boolean } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as ErrorLike;
  const cause = (typeof e.cause === 'object' && e.cause !== null ? e.cause : {}) as ErrorLike;
  const code = typeof cause.code === 'string' ? cause.code : typeof e.code === 'string' ? e.code : '';
  const detail = typeof e.message === 'string' && e.message ? e.message : String(err);
  if (TLS_CODES.has(code)) {
    return {
      message: `TLS verification failed (${code}: ${detail}); set spec.prometheus.caFile to the CA that signed Prometheus's certificate, or insecureSkipVerify: true`,
      retryable: false,
    };
  }
  if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER') {
    return { message: `TLS handshake failed (${code}: ${detail}); is the URL's scheme (http/https) right?`, retryable: false };
  }
  switch (code) {
    case 'ECONNREFUSED':
      return { message: `connection refused (ECONNREFUSED: ${detail})`, retryable: true };
    case 'ECONNRESET':
      return { message: `connection reset before an answer arrived (ECONNRESET: ${detail})`, retryable: true };
    case 'ETIMEDOUT':
    case 'ECONNABORTED':
      return { message: `no answer within ${timeoutMs} ms (${code})`, retryable: true };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { message: `host name not found (${code}: ${detail})`, retryable: true };
    default:
      return { message: code ? `${detail} (${code})` : detail, retryable: true };
  }
}

// ---- parsing: pure, shared by live queries and replay ----

interface PromEnvelope {
  status: 'success' | 'error';
  data?: unknown;
  errorType?: string;
  error?: string;
  warnings: string[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function envelopeOf(body: unknown): PromEnvelope | null {
  if (!isRecord(body) || (body.status !== 'success' && body.status !== 'error')) return null;
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((w): w is string => typeof w === 'string') : []);
  return {
    status: body.status,
    data: body.data,
    ...(typeof body.errorType === 'string' ? { errorType: body.errorType } : {}),
    ...(typeof body.error === 'string' ? { error: body.error } : {}),
    // Prometheus ≥ 2.45 also sends "infos" (e.g. "metric might not be a counter"); they belong with warnings.
    warnings: [...strings(body.warnings), ...strings(body.infos).map((i) => `info: ${i}`)],
  };
}

function describeBody(body: unknown): string {
  if (body === null || body === undefined) return 'an empty body';
  if (typeof body === 'string') {
    const start = body.replace(/\s+/g, ' ').trim().slice(0, 120);
    return `text starting "${start}${body.length > 120 ? '…' : ''}"`;
  }
  const json = JSON.stringify(body) ?? String(body);
  return `JSON ${json.slice(0, 120)}${json.length > 120 ? '…' : ''}`;
}

/** Prometheus sends sample values as strings, with NaN and infinities spelled its own way. */
export function parseSampleValue(text: unknown): number | null {
  if (typeof text !== 'string') return null;
  switch (text) {
    case 'NaN':
      return NaN;
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
  }
  if (!text.trim()) return null;
  const value = Number(text);
  return Number.isNaN(value) ? null : value;
}

/**
 * Turns a raw answer into a result, or into the error an operator should see. Answers that made it
 * here after retries (network errors, 429, 5xx) are final: they become 'unreachable'.
 */
export function parseQueryResponse(answer: RawAnswer, ctx: AnswerContext): QueryResult {
  const where = `Prometheus at ${ctx.url ?? '(unknown URL)'}`;
  const asked = `query: ${ctx.query} at ${ctx.at.toISOString()}`;
  const tries = answer.attempts ? ` after ${answer.attempts} attempt${answer.attempts === 1 ? '' : 's'}` : '';
  const { status, body } = answer;
  const envelope = envelopeOf(body);
  const failed = (message: string) => new CanaryError('query-failed', `${message}; ${asked}`);

  if (status === 0) {
    throw new CanaryError('unreachable', `${where} is unreachable${tries}; last error: ${answer.error ?? 'no answer'}; ${asked}`);
  }
  if (status >= 500 || status === 429) {
    const last =
      envelope?.status === 'error'
        ? `HTTP ${status} ${envelope.errorType ?? 'error'}: ${envelope.error ?? '(no message)'}`
        : `HTTP ${status} with ${describeBody(body)}`;
    throw new CanaryError('unreachable', `${where} kept failing${tries}; last answer: ${last}; ${asked}`);
  }
  if (status >= 300 && status < 400) {
    throw failed(`${where} answered HTTP ${status} (${answer.error ?? 'redirected'}) instead of query results, perhaps from a login proxy; point the URL at Prometheus itself`);
  }
  if (envelope?.status === 'error') {
    // bad_data means the PromQL itself is wrong: a policy problem (exit 2), not an outage.
    if (envelope.errorType === 'bad_data') {
      throw new CanaryError('invalid-input', `${where} rejected the query as bad_data (HTTP ${status}): ${envelope.error ?? '(no message)'}; fix the query in the policy; ${asked}`);
    }
    throw failed(`${where} rejected the query with ${envelope.errorType ?? 'an error'} (HTTP ${status}): ${envelope.error ?? '(no message)'}`);
  }
  if (status === 401 || status === 403) {
    throw failed(`${where} refused access (HTTP ${status}); check spec.prometheus.bearerToken or basicAuth and that the credentials are valid`);
  }
  if (status === 404) {
    throw failed(`${where} has no query API at ${(ctx.url ?? '').replace(/\?.*$/, '')}${QUERY_PATH} (HTTP 404); check the URL and its path prefix (e.g. https://host/prometheus for Mimir)`);
  }
  if (status !== 200) {
    throw failed(`${where} answered HTTP ${status} with ${describeBody(body)}; expected HTTP 200 with Prometheus API JSON`);
  }
  if (!envelope) {
    throw failed(`${where} answered with ${describeBody(body)}, not Prometheus API JSON (expected {"status":"success","data":{"resultType":…,"result":…}}); perhaps a login page or proxy is in front of it`);
  }

  const data = envelope.data;
  if (!isRecord(data) || typeof data.resultType !== 'string') {
    throw failed(`${where} answered "success" without data.resultType; expected Prometheus API JSON`);
  }
  const malformed = (what: string) => failed(`${where} sent a malformed ${data.resultType} result: ${what}`);

  switch (data.resultType) {
    case 'vector': {
      if (!Array.isArray(data.result)) throw malformed('expected data.result to be a list');
      const samples: InstantSample[] = data.result.map((item, i) => {
        if (!isRecord(item) || !Array.isArray(item.value)) throw malformed(`result[${i}] has no value`);
        const value = parseSampleValue(item.value[1]);
        if (value === null) throw malformed(`result[${i}] has value ${JSON.stringify(item.value[1])}, expected a number as a string`);
        const labels: Record<string, string> = {};
        if (isRecord(item.metric)) {
          for (const [k, v] of Object.entries(item.metric)) if (typeof v === 'string') labels[k] = v;
        }
        return { labels, value };
      });
      return { resultType: 'vector', samples, warnings: envelope.warnings };
    }
    case 'scalar': {
      const value = Array.isArray(data.result) ? parseSampleValue(data.result[1]) : null;
      if (value === null) throw malformed('expected data.result to be [time, "number"]');
      return { resultType: 'scalar', samples: [{ labels: {}, value }], warnings: envelope.warnings };
    }
    case 'matrix':
      throw failed(`${where} returned a range vector (matrix), but checks need one value per series; wrap the range selector in a function such as rate(…[5m]) or sum_over_time(…[5m])`);
    case 'string':
      throw failed(`${where} returned a string, but checks need a number; expected a query returning an instant vector or a scalar`);
    default:
      throw failed(`${where} returned an unknown resultType "${data.resultType}"; expected "vector" or "scalar"`);
  }
}
