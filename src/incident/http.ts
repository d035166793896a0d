import { AttemptError, requestTimeoutMs, type Attempt } from './retry.js';

// One HTTP exchange for a sink, classified for the retry loop: network errors, timeouts, 408, 429
// and 5xx are worth another attempt; other 4xx mean the request itself is wrong.

export type Fetch = typeof fetch;

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

const MAX_EXCERPT = 300;

export function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_EXCERPT ? `${flat.slice(0, MAX_EXCERPT)}…` : flat;
}

function retryAfterMs(headers: Headers): number | undefined {
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** Any URL in a message: fetch's errors quote the whole URL, credentials and tokens included. */
const URL_PATTERN = /[a-z][a-z0-9+.-]*:\/\/\S+/gi;

/**
 * Why a request got no answer, never quoting the URL. A TypeError without a cause is fetch
 * refusing to build the request (a URL with credentials, a header value it rejects): its message
 * quotes the offending URL or header, and sending it again cannot help.
 */
export function networkFailure(err: unknown, what: string, timeoutMs: number): AttemptError {
  const e = err as { name?: string; cause?: { code?: unknown; message?: unknown }; message?: unknown };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return new AttemptError(`${what}: no answer within ${Math.round(timeoutMs / 100) / 10}s`, true);
  if (err instanceof TypeError && e.cause === undefined) {
    return new AttemptError(`${what}: the request could not be built (fetch rejected its URL or a header); check the sink's URL and headers`, false);
  }
  const code = e.cause?.code;
  if (typeof code === 'string' && code) return new AttemptError(`${what}: connection failed (${code})`, true);
  const detail = typeof e.cause?.message === 'string' ? e.cause.message : typeof e.message === 'string' ? e.message : 'unknown error';
  return new AttemptError(`${what}: request failed (${excerpt(detail.replace(URL_PATTERN, '[URL]'))})`, true);
}

/**
 * Sends the request within the attempt's limits: min(attemptTimeoutMs, deadline − now), and never
 * past the deadline even if it is pulled in while the request is in flight. `what` names the
 * endpoint in messages ("Slack", "PagerDuty") without its URL.
 */
export async function send(fetchImpl: Fetch, req: HttpRequest, what: string, attempt: Attempt): Promise<HttpResponse> {
  const timeoutMs = requestTimeoutMs(attempt, what);
  const { deadline } = attempt;
  let res: Response;
  try {
    res = await fetchImpl(req.url, {
      method: req.method,
      headers: req.headers,
      ...(req.body !== undefined && { body: req.body }),
      redirect: 'manual',
      signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), deadline.signal]),
    });
  } catch (err) {
    if (deadline.signal.aborted) throw new AttemptError(`${what}: stopped: ${deadline.limit} was reached`, false);
    throw networkFailure(err, what, timeoutMs);
  }
  let text = '';
  try {
    text = await res.text();
  } catch {
    // A body cut off mid-way still leaves the status to judge by.
  }
  return { status: res.status, headers: res.headers, text };
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
