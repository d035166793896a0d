import { HttpTransport } from '../http-transport.js';
import { parseRetryAfter } from '../retry.js';
import { AttemptError, requestTimeoutMs, type Attempt } from './retry.js';

// One HTTP exchange for a sink, over the shared transport (axios, proxy settings, one retry
// module), classified for the retry loop: network errors, timeouts, 408, 429 and 5xx are worth
// another attempt; other 4xx mean the request itself is wrong.

export { HttpTransport };

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * The transport incident sinks use unless given one: proxies from the environment, Node's CAs
 * plus `caFile` when a sink names one (`what` names the setting in errors).
 */
export function incidentTransport(tls: { caFile?: string; what?: string } = {}): HttpTransport {
  return new HttpTransport({
    ...(tls.caFile !== undefined && { caFile: tls.caFile, caWhat: tls.what ?? 'caFile' }),
    keepAlive: false,
    axios: {
      // Every status is an answer for expectSuccess() to judge; the body is kept as text.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      maxRedirects: 0,
    },
  });
}

const MAX_EXCERPT = 300;

export function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_EXCERPT ? `${flat.slice(0, MAX_EXCERPT)}…` : flat;
}

function retryAfterMs(headers: Headers): number | undefined {
  return parseRetryAfter(headers.get('retry-after'), Date.now());
}

/** Any URL in a message: fetch's errors quote the whole URL, credentials and tokens included. */
const URL_PATTERN = /[a-z][a-z0-9+.-]*:\/\/\S+/gi;

/** Node refusing to build the request (a header value it rejects): sending it again cannot help. */
const BUILD_CODES = new Set(['ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_URL', 'ERR_UNESCAPED_CHARACTERS', 'ERR_INVALID_ARG_TYPE']);

/** Why a request got no answer, never quoting the URL. */
export function networkFailure(err: unknown, what: string, timeoutMs: number, timedOut = false): AttemptError {
  const e = err as { name?: string; code?: unknown; cause?: { code?: unknown; message?: unknown }; message?: unknown };
  const code = typeof e.code === 'string' && e.code ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : '';
  if (timedOut || e.name === 'TimeoutError' || code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return new AttemptError(`${what}: no answer within ${Math.round(timeoutMs / 100) / 10}s`, true);
  }
  if (BUILD_CODES.has(code)) {
    return new AttemptError(`${what}: the request could not be built (${code}); check the sink's URL and headers`, false);
  }
  const detail = typeof e.cause?.message === 'string' ? e.cause.message : typeof e.message === 'string' ? e.message : 'unknown error';
  if (code && code !== 'ERR_CANCELED' && code !== 'ERR_NETWORK') {
    // Node's own messages repeat the code ("connect ECONNREFUSED 127.0.0.1:9"); others may say more.
    const more = detail.includes(code) ? '' : `: ${excerpt(detail.replace(URL_PATTERN, '[URL]'))}`;
    return new AttemptError(`${what}: connection failed (${code}${more})`, true);
  }
  return new AttemptError(`${what}: request failed (${excerpt(detail.replace(URL_PATTERN, '[URL]'))})`, true);
}

/**
 * Sends the request within the attempt's limits: min(attemptTimeoutMs, deadline − now), and never
 * past the deadline even if it is pulled in while the request is in flight. `what` names the
 * endpoint in messages ("Slack", "PagerDuty") without its URL.
 */
export async function send(transport: HttpTransport, req: HttpRequest, what: string, attempt: Attempt): Promise<HttpResponse> {
  if (hasCredentials(req.url)) {
    // axios would turn user:password@ into basic auth; credentials belong in headers or the signing secret.
    throw new AttemptError(`${what}: the request could not be built (its URL holds a user name or password); check the sink's URL and headers`, false);
  }
  const timeoutMs = requestTimeoutMs(attempt, what);
  const { deadline } = attempt;
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await transport.http.request<string>({
      method: req.method,
      url: req.url,
      headers: req.headers,
      ...(req.body !== undefined && { data: req.body }),
      signal: AbortSignal.any([timeout, attempt.signal ?? deadline.signal]),
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (typeof value === 'string') headers.set(name, value);
      else if (Array.isArray(value)) for (const v of value) headers.append(name, String(v));
      else if (typeof value === 'number') headers.set(name, String(value));
    }
    return { status: res.status, headers, text: typeof res.data === 'string' ? res.data : '' };
  } catch (err) {
    if (deadline.signal.aborted) throw new AttemptError(`${what}: stopped: ${deadline.limit} was reached`, false);
    throw networkFailure(err, what, timeoutMs, timeout.aborted);
  }
}

function hasCredentials(url: string): boolean {
  try {
    const u = new URL(url);
    return Boolean(u.username || u.password);
  } catch {
    return false;
  }
}

/** Throws an AttemptError unless the status is 2xx. */
export function expectSuccess(res: HttpResponse, what: string): void {
  if (res.status >= 200 && res.status < 300) return;
  const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
  const body = excerpt(res.text);
  throw new AttemptError(`${what} answered HTTP ${res.status}${body ? `: ${body}` : ''}`, retryable, retryable ? retryAfterMs(res.headers) : undefined);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
