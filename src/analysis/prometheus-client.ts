import { CanaryError } from '../errors.js';
import { HttpTransport } from '../http-transport.js';
import type { PrometheusSettings } from '../policy/policy.js';
import { Deadline, parseRetryAfter, retry, RetryError, systemRetryClock, type Classification } from '../retry.js';
import { redact, redactDeep } from '../secrets.js';
import { parseQueryResponse, type RawAnswer, type RawQuerier } from './prometheus-answer.js';
import { prometheusConnection, prometheusOptionsFromSettings, type PrometheusClientOptions } from './prometheus-auth.js';
import type { MetricsSource, QueryResult } from './types.js';

export { parseQueryResponse, parseSampleValue, type AnswerContext, type RawAnswer, type RawQuerier } from './prometheus-answer.js';
export { displayUrl, type PrometheusClientOptions } from './prometheus-auth.js';

// The Prometheus HTTP API client. It is split so recordings hold exactly what came over the wire:
// `queryRaw` does the HTTP (with retries) and returns the raw answer, redacted; `parseQueryResponse`
// (prometheus-answer.ts) is the pure step that turns any raw answer — live or replayed — into
// samples or an error. Where it connects and with which credentials is prometheus-auth.ts.

const DEFAULT_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;
export const DEFAULT_QUERY_DEADLINE_MS = 30_000;
const MAX_TEXT_BODY = 2000;

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
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new CanaryError('invalid-input', `Prometheus timeout: expected a positive number of milliseconds, got ${options.timeoutMs}`);
    }
    if (!Number.isInteger(options.retries) || options.retries < 0) {
      throw new CanaryError('invalid-input', `Prometheus retries: expected a whole number ≥ 0, got ${options.retries}`);
    }
    // Every credential is registered with the redaction boundary here, before any request.
    const connection = prometheusConnection(options);
    const { headers, basicAuth } = connection;
    const url = new URL(connection.endpoint);
    this.secrets = connection.secrets;
    this.endpoint = connection.endpoint;
    this.displayUrl = connection.displayUrl;
    this.attempts = options.retries + 1;
    this.timeoutMs = options.timeoutMs;
    this.backoffMs = options.baseDelayMs ?? DEFAULT_BACKOFF_MS;
    this.deadlineMs = options.deadlineMs ?? DEFAULT_QUERY_DEADLINE_MS;
    this.sleep = options.sleep;
    this.now = options.now ?? Date.now;

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
          attempts: this.attempts,
          timeoutMs: this.timeoutMs,
          baseDelayMs: this.backoffMs,
          maxDelayMs: MAX_BACKOFF_MS,
          classify: classifyAnswer,
          now: this.now,
          ...(sleep && { sleep }),
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

  /** The body as recorded and parsed: redacted as text, and again once JSON.parse has decoded escapes like "\/". */
  private bodyOf(text: string): unknown {
    const clean = redact(text, this.secrets);
    if (!clean.trim()) return null;
    try {
      return redactDeep(JSON.parse(clean) as unknown, this.secrets);
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
  extra: Pick<PrometheusClientOptions, 'baseDelayMs' | 'sleep' | 'now'> = {},
): PrometheusClient {
  return new PrometheusClient({ ...prometheusOptionsFromSettings(settings, urlOverride), ...extra });
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

