// The SmokeTester adapter: each smoke test as one HTTP request (retried through the one retry
// loop) over the one HTTP stack, carrying the policy's routing header so that the ingress sends it
// to the canary. What it returns is evidence: the request line, the status and the first 500 bytes
// of the response, all through the redaction boundary.

import { HttpTransport } from '../http-transport.js';
import { resolveHeaders } from '../policy/headers.js';
import type { SmokeTestSpec } from '../policy/smoke-schema.js';
import { retry, RetryError } from '../retry.js';
import type { SmokeResult, SmokeTester } from '../rollout/smoke-tests.js';
import { redact, redactUrl } from '../secrets.js';

export const EXCERPT_BYTES = 500;

export interface SmokeClientOptions {
  /** "https://shop.example.com": the stable Ingress's first host; used by tests with a `path`. */
  baseUrl?: string;
  /** The policy's header routing: sent with every smoke request. */
  headerRouting: { header: string; value?: string };
  caFile?: string;
  insecureSkipVerify?: boolean;
  /** First wait between retries (default 500 ms). */
  retryDelayMs?: number;
  signal?: AbortSignal;
}

/** The minimal shape of an Ingress this needs: its rules' hosts and its TLS hosts. */
export interface IngressHosts {
  spec?: { rules?: { host?: string }[]; tls?: { hosts?: string[] }[] };
}

/** "https://HOST" for the Ingress's first host (https when its TLS covers that host, or names none), or undefined. */
export function stableBaseUrl(ing: IngressHosts): string | undefined {
  const host = (ing.spec?.rules ?? []).map((r) => r.host).find((h): h is string => typeof h === 'string' && h !== '');
  if (!host) return undefined;
  const tls = (ing.spec?.tls ?? []).some((t) => !t.hosts || t.hosts.length === 0 || t.hosts.includes(host));
  return `${tls ? 'https' : 'http'}://${host}`;
}

/** Reads a dot-separated path ("checks.db", "items.0.id") out of parsed JSON. */
export function jsonField(doc: unknown, path: string): unknown {
  let at: unknown = doc;
  for (const part of path.split('.')) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/** Why a response fails the test, or null when it passes. */
export function judgeResponse(test: SmokeTestSpec, status: number, body: string): string | null {
  if (!test.status.includes(status)) return `status ${status}, expected ${test.status.join(' or ')}`;
  if (test.body !== undefined && !body.includes(test.body)) return `the response does not contain ${JSON.stringify(test.body)}`;
  if (test.json) {
    let doc: unknown;
    try {
      doc = JSON.parse(body);
    } catch {
      return `expected a JSON response with ${test.json.path} = ${JSON.stringify(test.json.equals)}, got a body that is not JSON`;
    }
    const value = jsonField(doc, test.json.path);
    if (value !== test.json.equals) return `${test.json.path} is ${value === undefined ? 'missing' : JSON.stringify(value)}, expected ${JSON.stringify(test.json.equals)}`;
  }
  return null;
}

class AttemptFailed extends Error {
  constructor(readonly result: SmokeResult) {
    super(result.reason);
  }
}

export class SmokeClient implements SmokeTester {
  private readonly transport: HttpTransport;
  private signal: AbortSignal | undefined;

  constructor(private readonly opts: SmokeClientOptions) {
    this.signal = opts.signal;
    this.transport = new HttpTransport({
      ...(opts.caFile !== undefined && { caFile: opts.caFile }),
      caWhat: 'spec.smokeTests caFile',
      ...(opts.insecureSkipVerify !== undefined && { insecureSkipVerify: opts.insecureSkipVerify }),
      keepAlive: false,
    });
  }

  private urlOf(test: SmokeTestSpec): string {
    if (test.url !== undefined) return test.url;
    if (!this.opts.baseUrl) throw new Error(`smoke test "${test.name}": "path" needs a host, and the stable Ingress names none; use "url"`);
    return `${this.opts.baseUrl}${test.path ?? '/'}`;
  }

  async run(test: SmokeTestSpec): Promise<SmokeResult> {
    const { header, value } = this.opts.headerRouting;
    // Secret header values are registered with the redaction boundary here, before any request.
    const headers = { ...resolveHeaders(test.headers, `spec.smokeTests.${test.name}.headers`), [header]: value ?? 'always' };
    let url: string;
    try {
      url = this.urlOf(test);
    } catch (err) {
      return { name: test.name, ok: false, reason: (err as Error).message, attempts: 0, method: test.method, url: '(none)', status: null, excerpt: '' };
    }
    const shown = redactUrl(url);
    const base = { name: test.name, method: test.method, url: shown };
    try {
      const { value: result, attempts } = await retry(
        async (attempt) => {
          let status: number | null = null;
          let excerpt = '';
          let reason: string | null;
          try {
            const res = await this.transport.http.request<ArrayBuffer>({
              url,
              method: test.method,
              headers,
              responseType: 'arraybuffer',
              validateStatus: () => true,
              timeout: attempt.timeoutMs,
              signal: attempt.signal,
              maxRedirects: 0,
            });
            status = res.status;
            const bytes = Buffer.from(res.data ?? new ArrayBuffer(0));
            const body = bytes.toString('utf8');
            excerpt = redact(bytes.subarray(0, EXCERPT_BYTES).toString('utf8'));
            reason = judgeResponse(test, res.status, body);
          } catch (err) {
            reason = `no response: ${redact((err as Error).message)}`;
          }
          const r: SmokeResult = { ...base, ok: reason === null, reason: reason ?? `status ${status}`, attempts: attempt.number, status, excerpt };
          if (!r.ok) throw new AttemptFailed(r);
          return r;
        },
        {
          classify: () => 'retryable',
          attempts: test.retries + 1,
          timeoutMs: test.timeoutMs,
          deadlineMs: (test.retries + 1) * (test.timeoutMs + 10_000),
          baseDelayMs: this.opts.retryDelayMs ?? 500,
          ...(this.signal && { signal: this.signal }),
        },
      );
      return { ...result, attempts };
    } catch (err) {
      const last = err instanceof RetryError ? err.last : err;
      if (last instanceof AttemptFailed) return { ...last.result, attempts: err instanceof RetryError ? err.attempts : last.result.attempts };
      const why = err instanceof RetryError ? `${redact(String((err.last as Error)?.message ?? err.last))} (${err.why})` : redact(String(err));
      return { ...base, ok: false, reason: `no response: ${why}`, attempts: err instanceof RetryError ? err.attempts : 1, status: null, excerpt: '' };
    }
  }

  /** The rollout's cancellation: stops a request in flight and any wait between retries. */
  withSignal(signal: AbortSignal): this {
    this.signal = signal;
    return this;
  }

  close(): void {
    this.transport.close();
  }
}
