import { CanaryError } from '../errors.js';
import type { InstantSample, QueryResult } from './types.js';

// The pure half of the Prometheus client: what a raw answer (live or replayed from a recording)
// means — samples, or the error an operator should see. No I/O; shared by live queries and replay.

export const QUERY_PATH = '/api/v1/query';

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
