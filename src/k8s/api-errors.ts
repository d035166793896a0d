// What a failed Kubernetes API call means for us: worth retrying (429, 5xx, timeouts, resets),
// the caller's to handle (404, 409), or an operator-facing error (everything else).

import type { ConfigurationOptions, ObservableMiddleware, RequestContext } from '@kubernetes/client-node';
// client-node 1.x middleware must return its own Observable stub, which is not re-exported.
import { of } from '@kubernetes/client-node/dist/gen/rxjsStub.js';
import { CanaryError } from '../errors.js';
import type { KubernetesSettings } from '../policy/policy.js';
import { Deadline, parseRetryAfter, retry, RetryError, systemRetryClock, type Classification, type RetryPolicy } from '../retry.js';
import { redact } from '../secrets.js';

/**
 * How one API call is retried: the one policy type (src/retry.ts). The overall deadline is what
 * bounds a call: against an API server that accepts connections and never answers, one call gives
 * up after `deadlineMs` (30 s by default), not after attempts × timeout.
 */
export interface KubeRetryOptions extends RetryPolicy {
  /** The API server's URL, for messages. */
  server?: string;
}

/** The retry options a policy's spec.kubernetes asks for. */
export function kubeRetryOf(settings: Pick<KubernetesSettings, 'attempts' | 'timeoutMs' | 'deadlineMs'>): RetryPolicy {
  return { attempts: settings.attempts, timeoutMs: settings.timeoutMs, deadlineMs: settings.deadlineMs };
}

/** Defaults for one Kubernetes API call; the policy's spec.kubernetes overrides them. */
export const KUBE_RETRY_DEFAULTS = { attempts: 10, timeoutMs: 10_000, deadlineMs: 30_000, baseDelayMs: 500, maxDelayMs: 8_000 } as const;

const MAX_RETRY_AFTER_MS = 120_000;
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET']);

function field(err: unknown, key: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[key] : undefined;
}

/** The HTTP status of a failed API call (client-node's ApiException), undefined for network errors. */
export function statusCode(err: unknown): number | undefined {
  const code = field(err, 'code') ?? field(err, 'statusCode');
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;

/** The metav1.Status of a failed call, parsed from client-node's string body. */
export function apiStatus(err: unknown): { message?: string; reason?: string; retryAfterSeconds?: number } {
  const raw = field(err, 'body');
  let body: unknown = raw;
  if (typeof raw === 'string') {
    try {
      body = JSON.parse(raw) as unknown;
    } catch {
      return raw.trim() ? { message: raw.trim().slice(0, 500) } : {};
    }
  }
  const message = field(body, 'message');
  const reason = field(body, 'reason');
  const retryAfter = field(field(body, 'details'), 'retryAfterSeconds');
  return {
    ...(typeof message === 'string' ? { message } : {}),
    ...(typeof reason === 'string' ? { reason } : {}),
    ...(typeof retryAfter === 'number' ? { retryAfterSeconds: retryAfter } : {}),
  };
}

export function isAlreadyExists(err: unknown): boolean {
  return statusCode(err) === 409 && apiStatus(err).reason === 'AlreadyExists';
}

/** The server's own words, shortened to one line and redacted: a front-end may echo our request (and token). */
function serverText(message: string): string {
  const line = message.replace(/\s+/g, ' ').trim();
  return redact(line.length > 300 ? `${line.slice(0, 299)}…` : line);
}

/**
 * One line for an operator; never the raw ApiException text (which dumps the response headers and
 * body): the status, the reason, and the server's message redacted.
 */
export function describeKubeError(err: unknown): string {
  const code = statusCode(err);
  if (code !== undefined) {
    const { message, reason } = apiStatus(err);
    return redact(`HTTP ${code}${reason ? ` ${reason.slice(0, 60)}` : ''}${message ? `: ${serverText(message)}` : ''}`);
  }
  if (err instanceof TimeoutError) return err.message;
  const sysCode = field(err, 'code');
  const message = serverText(err instanceof Error ? err.message : String(err));
  return typeof sysCode === 'string' && !message.includes(sysCode) ? `${message} (${sysCode})` : message;
}

/**
 * A failed API call as our code sees it after the client library: the status code, the server's
 * metav1.Status (reason and message redacted), nothing else — no request or response headers, no
 * raw body. 404 and 409 reach callers as this, so whatever they print is already safe.
 */
export class KubeApiError extends Error {
  readonly code: number;
  /** A metav1.Status as JSON text (as client-node's ApiException carries it), redacted. */
  readonly body: string;

  constructor(err: unknown) {
    const code = statusCode(err) ?? 0;
    const { message, reason, retryAfterSeconds } = apiStatus(err);
    const clean = message === undefined ? undefined : serverText(message);
    super(`Kubernetes API answered HTTP ${code}${reason ? ` ${reason}` : ''}${clean ? `: ${clean}` : ''}`);
    this.name = 'KubeApiError';
    this.code = code;
    this.body = JSON.stringify({
      kind: 'Status',
      code,
      ...(reason !== undefined && { reason: redact(reason) }),
      ...(clean !== undefined && { message: clean }),
      ...(retryAfterSeconds !== undefined && { details: { retryAfterSeconds } }),
    });
  }
}

/** Client errors with an HTTP status become KubeApiError; ours and network errors pass through. */
export function sanitizeKubeError(err: unknown): unknown {
  if (err instanceof CanaryError || err instanceof KubeApiError || statusCode(err) === undefined) return err;
  return new KubeApiError(err);
}

export class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** Worth another try: the server or the network may well answer next time. */
export function isTransient(err: unknown): boolean {
  const code = statusCode(err);
  if (code !== undefined) return code === 429 || code >= 500;
  if (err instanceof TimeoutError) return true;
  const sys = field(err, 'code') ?? field(field(err, 'cause'), 'code');
  if (typeof sys === 'string' && TRANSIENT_CODES.has(sys)) return true;
  const type = field(err, 'type');
  if (type === 'request-timeout' || field(err, 'name') === 'AbortError') return true;
  const message = err instanceof Error ? err.message : '';
  return /socket hang up|ECONNRESET|ECONNREFUSED|ETIMEDOUT|network timeout/i.test(message);
}

function retryAfterMs(err: unknown): number | undefined {
  if (statusCode(err) !== 429) return undefined;
  const headers = field(err, 'headers');
  const header = field(headers, 'retry-after') ?? field(headers, 'Retry-After');
  const fromHeader = typeof header === 'string' ? parseRetryAfter(header, Date.now(), MAX_RETRY_AFTER_MS) : undefined;
  const seconds = apiStatus(err).retryAfterSeconds;
  return fromHeader ?? (seconds === undefined ? undefined : Math.min(seconds * 1000, MAX_RETRY_AFTER_MS));
}

/** Per-call options for a client-node API method: the attempt's AbortSignal, wired into the request. */
export type KubeCallOptions = ConfigurationOptions<ObservableMiddleware>;

/**
 * Adds `signal` to a call's options (keeping any, e.g. setHeaderOptions' Content-Type), so an
 * attempt that timed out is cancelled on the wire instead of holding the process open.
 */
export function withSignal(signal: AbortSignal, base?: KubeCallOptions): KubeCallOptions {
  const middleware: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      ctx.setSignal(signal);
      return of(ctx);
    },
    post: (res) => of(res),
  };
  return { ...base, middleware: [...(base?.middleware ?? []), middleware], middlewareMergeStrategy: 'append' };
}

/**
 * What an error we do not retry means for the operator: the server's own words, never the raw
 * ApiException text (which dumps the response headers). 400 and 422 (a webhook or validation
 * refusing the object) are the input's fault; anything else is unexpected.
 */
function operatorError(what: string, err: unknown): CanaryError {
  const code = statusCode(err);
  const kind = code === 400 || code === 422 ? 'invalid-input' : 'unexpected';
  const head = code === undefined ? `Kubernetes API call failed while ${what}` : `Kubernetes API rejected ${what}`;
  return new CanaryError(kind, `${head}: ${describeKubeError(err)}`, [], { cause: sanitizeKubeError(err) });
}

/** What a failed call means for the retry loop: 404/409/403/401 and other 4xx are for the caller. */
export function classifyKubeError(err: unknown): Classification {
  if (err instanceof CanaryError || !isTransient(err)) return 'fatal';
  const after = retryAfterMs(err);
  return after === undefined ? 'retryable' : { retryAfterMs: after };
}

/**
 * Runs one API call through the one retry module (src/retry.ts): transient failures are retried
 * with jittered exponential backoff (429 waits as long as the server's Retry-After asks) until
 * the call's overall deadline; an attempt that times out is aborted on the wire. 404 and 409
 * reach the caller untouched (it decides what they mean); everything else becomes a CanaryError
 * written for the operator: 403/401 name the fix, 400/422 are invalid input (exit 2).
 * `op` must pass the options it is given to the client-node method, which carries the abort signal.
 */
export async function withKubeRetry<T>(what: string, op: (options: KubeCallOptions) => Promise<T>, opts: KubeRetryOptions = {}): Promise<T> {
  const server = opts.server ?? 'the configured server';
  const deadlineMs = opts.deadlineMs ?? KUBE_RETRY_DEFAULTS.deadlineMs;
  const now = opts.now ?? systemRetryClock.now;
  const deadline = opts.deadline ?? new Deadline(now, deadlineMs, `the ${deadlineMs / 1000}s deadline for one API call (spec.kubernetes.deadline)`);
  try {
    const { value } = await retry((attempt) => op(withSignal(attempt.signal)), {
      deadlineMs,
      attempts: Math.max(1, opts.attempts ?? KUBE_RETRY_DEFAULTS.attempts),
      timeoutMs: opts.timeoutMs ?? KUBE_RETRY_DEFAULTS.timeoutMs,
      baseDelayMs: opts.baseDelayMs ?? KUBE_RETRY_DEFAULTS.baseDelayMs,
      maxDelayMs: opts.maxDelayMs ?? KUBE_RETRY_DEFAULTS.maxDelayMs,
      maxRetryAfterMs: opts.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS,
      classify: classifyKubeError,
      now,
      ...(opts.sleep && { sleep: opts.sleep }),
      timeoutError: (ms) => new TimeoutError(ms),
      deadline,
      ...(opts.random && { random: opts.random }),
      ...(opts.signal && { signal: opts.signal }),
    });
    return value;
  } catch (err) {
    if (!(err instanceof RetryError)) throw err;
    const last = err.last;
    if (err.reason === 'fatal') throw fatalError(what, server, last);
    const after = err.reason === 'attempts' ? ` after ${err.attempts} attempts` : ` (${err.why})`;
    throw new CanaryError('unreachable', `Kubernetes API at ${server} unreachable while ${what}${after}: ${describeKubeError(last)}`, [], { cause: sanitizeKubeError(last) });
  } finally {
    if (!opts.deadline) deadline.dispose();
  }
}

function fatalError(what: string, server: string, err: unknown): unknown {
  if (err instanceof CanaryError) return err;
  const code = statusCode(err);
  // The caller decides what these mean; it gets our error, never the client's (headers, raw body).
  if (code === 404 || code === 409) return sanitizeKubeError(err);
  if (code === 403) {
    const message = serverText(apiStatus(err).message ?? 'Forbidden');
    return new CanaryError('invalid-input', `Kubernetes API refused ${what}: ${message}; grant it with examples/rbac.yaml`, [], { cause: sanitizeKubeError(err) });
  }
  if (code === 401) {
    return new CanaryError(
      'invalid-input',
      `Kubernetes API at ${server} rejected the credentials while ${what} (401 Unauthorized): check the kubeconfig user's token or certificate`,
      [],
      { cause: sanitizeKubeError(err) },
    );
  }
  return operatorError(what, err);
}
