import { AttemptError } from './retry.js';

// One HTTP exchange for a sink, classified for the retry loop: network errors, timeouts, 408, 429
// and 5xx are worth another attempt; other 4xx mean the request itself is wrong.

export type Fetch = typeof fetch;

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
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

function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; message?: string }; message?: string };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${Math.round(timeoutMs / 100) / 10}s`;
  const code = e.cause?.code;
  return code ? `connection failed (${code})` : `request failed (${e.cause?.message ?? e.message ?? String(err)})`;
}

/** Sends the request; `what` names the endpoint in messages ("Slack", "PagerDuty") without its URL. */
export async function send(fetchImpl: Fetch, req: HttpRequest, what: string): Promise<HttpResponse> {
  let res: Response;
  try {
    res = await fetchImpl(req.url, {
      method: req.method,
      headers: req.headers,
      ...(req.body !== undefined && { body: req.body }),
      redirect: 'manual',
      signal: AbortSignal.timeout(req.timeoutMs),
    });
  } catch (err) {
    throw new AttemptError(`${what}: ${networkReason(err, req.timeoutMs)}`, true);
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
