import type { CheckRecord } from '../analysis/types.js';
import { CanaryError } from '../errors.js';
import { HttpTransport } from '../http-transport.js';
import type { MetricsSettings } from '../policy/policy.js';
import { fanOut, type Reporter, type RolloutEvent } from '../rollout/events.js';
import type { Outcome, Phase, RolloutRecord } from '../rollout/record.js';
import { retry, RetryError } from '../retry.js';
import { MIN_BARE_SECRET, readSecret, redact, registerSecret, registerUrlSecrets } from '../secrets.js';
import { countsFromPushgateway, exposition, type DoraCounts } from './rollout-metrics.js';

// Pushes the rollout's metrics (src/report/rollout-metrics.ts) to a Prometheus Pushgateway at
// the start, at every step and phase change, and at the end; one group per target and namespace
// (job "canary"). Like every reporter it only renders: a push that fails is a warning on stderr,
// never a change to the rollout or its exit code. Pushes are sent one at a time, in order; the
// latest state wins when several events arrive while a push is in flight.

export const PUSH_JOB = 'canary';
type PushSettings = NonNullable<MetricsSettings['pushgateway']>;

export interface PushgatewayReporterOptions {
  settings: PushSettings;
  environment: string;
  /** The commit's time (ms since the epoch), for lead time to promotion. */
  commitTimeMs?: number;
  /** Where warnings go (default: stderr, one line each). */
  warn?: (line: string) => void;
}

export class PushgatewayReporter implements Reporter {
  private readonly transport: HttpTransport;
  private readonly base: string;
  private readonly settings: PushSettings;
  private readonly warn: (line: string) => void;
  private readonly secrets: string[] = [];
  private record: RolloutRecord | undefined;
  private phase: Phase = 'initializing';
  private weight = 0;
  private stepIndex = 0;
  private lastCheck: CheckRecord | undefined;
  private outcome: Outcome | undefined;
  private finishedAt: number | undefined;
  private previous: DoraCounts | undefined;
  private dirty = false;
  private running: Promise<void> | undefined;
  private lastError: string | undefined;

  constructor(private readonly opts: PushgatewayReporterOptions) {
    const s = opts.settings;
    this.settings = s;
    registerUrlSecrets(s.url);
    const headers: Record<string, string> = { 'User-Agent': 'canary' };
    for (const [name, value] of Object.entries(s.headers)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new CanaryError('invalid-input', `spec.metrics.pushgateway.headers: "${name}" is not an HTTP header name`);
      if (/[\r\n\0]/.test(value)) throw new CanaryError('invalid-input', `spec.metrics.pushgateway.headers.${name}: expected a value on one line`);
      headers[name] = value;
      // Header values are secrets (DESIGN.md): redacted from this reporter's messages whatever
      // their length, and everywhere once long enough not to wreck ordinary text (as for URL queries).
      if (value.length >= MIN_BARE_SECRET) this.keep(value);
      else if (value) this.secrets.push(value);
    }
    let auth: { username: string; password: string } | undefined;
    if (s.bearerToken) {
      const token = readSecret(s.bearerToken, 'spec.metrics.pushgateway.bearerToken');
      headers['Authorization'] = `Bearer ${token}`;
      this.keep(token);
      this.keep(headers['Authorization']);
    }
    if (s.basicAuth) {
      auth = { username: s.basicAuth.username, password: readSecret(s.basicAuth.password, 'spec.metrics.pushgateway.basicAuth.password') };
      const encoded = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
      for (const form of [auth.password, JSON.stringify(auth.password).slice(1, -1), encoded, `Basic ${encoded}`]) this.keep(form);
    }
    this.base = s.url.replace(/\/+$/, '');
    this.transport = new HttpTransport({
      ...(s.caFile && { caFile: s.caFile, caWhat: 'spec.metrics.pushgateway.caFile' }),
      insecureSkipVerify: s.insecureSkipVerify,
      axios: {
        headers,
        ...(auth && { auth }),
        validateStatus: () => true,
        responseType: 'text',
        transformResponse: [(data: unknown) => data],
        maxRedirects: 0,
      },
    });
    this.warn = opts.warn ?? ((line) => void process.stderr.write(`${line}\n`));
  }

  private keep(secret: string): void {
    if (!secret) return;
    registerSecret(secret);
    this.secrets.push(secret);
  }

  emit(event: RolloutEvent): void {
    switch (event.type) {
      case 'started':
        this.record = event.record;
        this.phase = event.record.phase;
        this.weight = event.record.weight;
        this.stepIndex = event.record.stepIndex;
        this.lastCheck = event.record.checks.at(-1);
        this.schedule();
        return;
      case 'phase':
        if (event.phase === this.phase) return;
        this.phase = event.phase;
        this.schedule();
        return;
      case 'step':
        this.stepIndex = event.stepIndex;
        this.weight = event.weight;
        this.schedule();
        return;
      case 'traffic':
        this.weight = event.weight;
        return;
      case 'check':
        this.lastCheck = event.check;
        return;
      case 'finished':
        this.record = event.record;
        this.phase = event.record.phase;
        this.weight = event.record.weight;
        this.outcome = event.outcome;
        this.finishedAt = event.at;
        this.schedule();
        return;
      default:
        return;
    }
  }

  /** Waits for the pushes in flight (the last one carries the outcome). */
  async close(): Promise<void> {
    while (this.running) await this.running;
    this.transport.close();
  }

  private schedule(): void {
    if (!this.record) return;
    this.dirty = true;
    if (this.running) return;
    this.running = (async () => {
      while (this.dirty) {
        this.dirty = false;
        await this.pushOnce();
      }
    })().finally(() => {
      this.running = undefined;
      // An event that came after the loop's last check and before this line is pushed now.
      if (this.dirty) this.schedule();
    });
  }

  private groupPath(record: RolloutRecord): string {
    const seg = (name: string, value: string) => `/${name}@base64/${Buffer.from(value).toString('base64url') || '='}`;
    return `/metrics/job/${PUSH_JOB}${seg('namespace', record.namespace)}${seg('target', record.target)}`;
  }

  private async pushOnce(): Promise<void> {
    const record = this.record;
    if (!record) return;
    try {
      // The DORA counters continue from what the group holds (one deploy per target at a time:
      // the Lease), so increase() over them counts rollouts across pushes and across runs.
      this.previous ??= await this.readCounts(record);
      const { body, contentType } = await exposition({
        record,
        environment: this.opts.environment,
        phase: this.phase,
        weight: this.weight,
        stepIndex: this.stepIndex,
        ...(this.lastCheck && { lastCheck: this.lastCheck }),
        ...(this.outcome && { outcome: this.outcome }),
        ...(this.finishedAt !== undefined && { finishedAt: this.finishedAt }),
        ...(this.opts.commitTimeMs !== undefined && { commitTimeMs: this.opts.commitTimeMs }),
        previous: this.previous,
      });
      // PUT replaces the whole group: series of the last rollout that this one has not (yet) set
      // do not linger.
      await this.send('PUT', `${this.base}${this.groupPath(record)}`, body, contentType);
      if (this.lastError) this.warn(`canary: pushing metrics to the Pushgateway works again`);
      this.lastError = undefined;
    } catch (err) {
      const message = redact(describe(err), this.secrets);
      // One line per distinct failure: a Pushgateway that is down is said once, not at every step
      // (told apart by the last attempt's error, not by how many attempts this push made).
      const key = redact(describe(err instanceof RetryError ? err.last : err), this.secrets);
      if (key !== this.lastError) this.warn(`canary: warning: metrics not pushed to the Pushgateway (the rollout goes on): ${message}`);
      this.lastError = key;
    }
  }

  private async readCounts(record: RolloutRecord): Promise<DoraCounts> {
    const text = await this.send('GET', `${this.base}/api/v1/metrics`);
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = undefined;
    }
    const counts = countsFromPushgateway(answer, { job: PUSH_JOB, namespace: record.namespace, target: record.target }, this.opts.environment);
    if (!counts) throw new Error(`${this.base}/api/v1/metrics did not answer as a Pushgateway does (expected {"data": [...]}); the DORA counters could not be continued`);
    return counts;
  }

  private async send(method: 'GET' | 'PUT', url: string, body?: string, contentType?: string): Promise<string> {
    const { value } = await retry(
      async ({ signal, timeoutMs }) => {
        const res = await this.transport.http.request<string>({
          method,
          url,
          signal,
          timeout: timeoutMs,
          ...(body !== undefined && { data: body, headers: { 'Content-Type': contentType ?? 'text/plain' } }),
        });
        if (res.status >= 200 && res.status < 300) return String(res.data ?? '');
        throw new HttpStatusError(method, res.status, String(res.data ?? '').slice(0, 300).trim());
      },
      {
        deadlineMs: this.settings.deadlineMs,
        timeoutMs: this.settings.timeoutMs,
        attempts: 4,
        classify: (err) => (err instanceof HttpStatusError && err.status < 500 && err.status !== 429 ? 'fatal' : 'retryable'),
      },
    );
    return value;
  }
}

class HttpStatusError extends Error {
  constructor(
    method: string,
    readonly status: number,
    body: string,
  ) {
    super(`${method} answered HTTP ${status}${body ? `: ${body}` : ''}`);
  }
}

function describe(err: unknown): string {
  // A RetryError's message is the last attempt's error and why no further attempt was made.
  return err instanceof Error || err instanceof RetryError ? err.message : String(err);
}

/** The commit's time from --commit-time or CANARY_COMMIT_TIME (RFC 3339), or undefined. */
export function commitTimeFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = flag ?? env['CANARY_COMMIT_TIME'];
  if (value === undefined || value === '') return undefined;
  const what = flag !== undefined ? '--commit-time' : 'CANARY_COMMIT_TIME';
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) {
    throw new CanaryError('invalid-input', `${what}: expected the commit's time in RFC 3339 like "2026-01-15T10:00:00Z" (git log -1 --format=%cI), got "${value}"`);
  }
  return ms;
}

/**
 * `reporter`, plus the Pushgateway reporter when the policy names one. Throws (exit 2) only for
 * bad settings (a missing secret): those are found before the rollout starts.
 */
export function withPushgateway(reporter: Reporter, metrics: MetricsSettings | undefined, extra: { commitTimeMs?: number; warn?: (line: string) => void } = {}): Reporter {
  if (!metrics?.pushgateway) return reporter;
  const push = new PushgatewayReporter({
    settings: metrics.pushgateway,
    environment: metrics.environment,
    ...(extra.commitTimeMs !== undefined && { commitTimeMs: extra.commitTimeMs }),
    ...(extra.warn && { warn: extra.warn }),
  });
  return fanOut([reporter, push]);
}

/** For the deploy command: --commit-time (or CANARY_COMMIT_TIME) checked, then withPushgateway. */
export function withPushgatewayFromFlags(reporter: Reporter, metrics: MetricsSettings | undefined, commitTime: string | undefined): Reporter {
  const commitTimeMs = commitTimeFrom(commitTime);
  return withPushgateway(reporter, metrics, { ...(commitTimeMs !== undefined && { commitTimeMs }) });
}
