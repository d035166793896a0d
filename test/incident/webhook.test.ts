import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CanaryError, messageOf } from '../../src/errors.js';
import { incidentTransport, send } from '../../src/incident/http.js';
import { AttemptError, Deadline } from '../../src/incident/retry.js';
import { createIncidentSinks } from '../../src/incident/sinks.js';
import { verifySignature, type WebhookBody } from '../../src/incident/webhook.js';
import { clearRegisteredSecrets, registerUrlSecrets } from '../../src/secrets.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { policyFrom, rolledBackRecord } from '../support/incident-fixtures.js';

const SECRET = 'whsec-7f3a9c-do-not-leak';
const noWait = { sleep: async () => undefined };

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A receiver on 127.0.0.1 that answers each request with the next status in `statuses`; `onRequest`
 * runs as each request arrives and may return false to leave it unanswered.
 */
async function receiver(statuses: number[], onRequest?: () => boolean): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (onRequest && !onRequest()) return;
      const status = statuses[Math.min(received.length - 1, statuses.length - 1)] ?? 200;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status >= 400 ? `receiver says ${status}` : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/canary`,
    received,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

let record: RolloutRecord;
const closers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  record = await rolledBackRecord();
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(closers.splice(0).map((c) => c()));
});

function webhookSinks(url: string, extra = '') {
  const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: webhook
      name: ops
      url: { env: OPS_WEBHOOK_URL }
      secret: { env: OPS_WEBHOOK_SECRET }
      headers: { X-Team: payments }${extra}
`);
  vi.stubEnv('OPS_WEBHOOK_URL', url);
  vi.stubEnv('OPS_WEBHOOK_SECRET', SECRET);
  return createIncidentSinks(policy.incidents, { retry: noWait });
}

describe('generic webhook sink', () => {
  it('posts the documented JSON body with a signature the receiver can verify', async () => {
    const server = await receiver([202]);
    closers.push(server.close);
    const [sink] = webhookSinks(server.url);
    const result = await sink!.open(record);
    expect(result).toEqual({ sink: 'ops', ok: true, message: `delivered to ${new URL(server.url).host} (HTTP 202)` });
    expect(server.received).toHaveLength(1);
    const { headers, body } = server.received[0]!;
    expect(verifySignature(body, SECRET, headers['x-canary-signature-256'] as string)).toBe(true);
    expect(verifySignature(body.replace('12%', '1%'), SECRET, headers['x-canary-signature-256'] as string)).toBe(false);
    expect(headers['idempotency-key']).toBe('checkout-20260115T100000Z');
    expect(headers['x-canary-event']).toBe('incident');
    expect(headers['x-team']).toBe('payments');
    const payload = JSON.parse(body) as WebhookBody;
    expect(payload).toMatchObject({ event: 'canary.incident', version: 1, incident: { rolloutId: 'checkout-20260115T100000Z', target: 'checkout', namespace: 'shop' } });
    expect(payload.incident.failingChecks[0]).toMatchObject({ metric: 'error-rate', display: { canary: '12%', stable: '0.51%', threshold: '5%' } });
    expect(body).not.toContain(SECRET);
  });

  it('carries no secret registered elsewhere in the process: a Prometheus URL token quoted in the record is redacted', async () => {
    const LEAKED = 'prom-qs-token-4c1f9e0a';
    registerUrlSecrets(`https://prom.example.com/?access_token=${LEAKED}`);
    const server = await receiver([202]);
    closers.push(server.close);
    const [sink] = webhookSinks(server.url);
    const reason = `Prometheus kept failing: upstream https://prom.example.com/api/v1/query?access_token=${LEAKED}`;
    const quoting: RolloutRecord = { ...record, id: 'checkout-redaction', outcome: { ...record.outcome!, reason } };
    const result = await sink!.open(quoting);
    expect(result.ok).toBe(true);
    const { headers, body } = server.received[0]!;
    expect(body).not.toContain(LEAKED);
    expect(body).toContain('access_token=[REDACTED]');
    // Signed as sent: the receiver's check still holds.
    expect(verifySignature(body, SECRET, headers['x-canary-signature-256'] as string)).toBe(true);
    clearRegisteredSecrets();
  });

  it('retries after a 500 with the same delivery id and body signature, and succeeds', async () => {
    const server = await receiver([500, 200]);
    closers.push(server.close);
    const [sink] = webhookSinks(server.url);
    const result = await sink!.open(record);
    expect(result.ok).toBe(true);
    expect(result.message).toContain('(after 2 attempts)');
    const [first, second] = server.received;
    expect(first!.headers['x-canary-delivery']).toBe(second!.headers['x-canary-delivery']);
    expect(verifySignature(second!.body, SECRET, second!.headers['x-canary-signature-256'] as string)).toBe(true);
  });

  it('sends one rollout once per process, however often it is asked', async () => {
    const server = await receiver([200]);
    closers.push(server.close);
    const [sink] = webhookSinks(server.url);
    await sink!.open(record);
    const again = await sink!.open(record);
    expect(server.received).toHaveLength(1);
    expect(again.ok).toBe(true);
    expect(again.message).toMatch(/^already delivered for rollout checkout-20260115T100000Z/);
  });

  it('reports a receiver that keeps refusing, without the URL token or secret in the message', async () => {
    const server = await receiver([400]);
    closers.push(server.close);
    const [sink] = webhookSinks(`${server.url}?token=tok-0123456789abcdef`);
    const result = await sink!.open(record);
    expect(result.ok).toBe(false);
    expect(result.message).toBe('webhook ops answered HTTP 400: receiver says 400');
    expect(server.received).toHaveLength(1); // a 400 is not retried
    expect(JSON.stringify(result)).not.toContain('tok-0123456789abcdef');
  });

  it('gives up on an unreachable receiver and says why', async () => {
    const server = await receiver([200]);
    await server.close(); // nothing listens on the port any more
    const [sink] = webhookSinks(server.url, '\n      timeout: 5s');
    const result = await sink!.open(record);
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/^webhook ops: connection failed \(ECONNREFUSED\) \(gave up after \d+ attempts/);
  });

  it('refuses to start when the secret it names is not set, naming the variable only', () => {
    const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: webhook
      url: https://hooks.example.com/canary
      secret: { env: MISSING_WEBHOOK_SECRET }
`);
    vi.stubEnv('MISSING_WEBHOOK_SECRET', undefined as unknown as string);
    expect(() => createIncidentSinks(policy.incidents)).toThrowError(CanaryError);
    expect(() => createIncidentSinks(policy.incidents)).toThrowError(
      'spec.incidents[0].secret: environment variable MISSING_WEBHOOK_SECRET is not set; expected it to hold the secret, or run with --no-incident to send none',
    );
  });

  it('gives a cancelled run at most 5 s to deliver, so the job still exits before the runner kills it', async () => {
    const server = await receiver([503]);
    closers.push(server.close);
    const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: webhook
      url: ${server.url}
      timeout: 60s
`);
    // Virtual time: each wait moves the clock, so the budget is measured without waiting for it.
    let now = 0;
    const retry = { now: () => now, sleep: async (ms: number) => void (now += ms), random: () => 1, attempts: 20 };
    const cancelled = new AbortController();
    cancelled.abort();
    const [cancelledSink] = createIncidentSinks(policy.incidents, { retry, signal: cancelled.signal });
    const result = await cancelledSink!.open(record);
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/the next retry would pass the 5s delivery limit\)$/);
    expect(now).toBeLessThanOrEqual(5_000);

    now = 0;
    const [normalSink] = createIncidentSinks(policy.incidents, { retry });
    const normal = await normalSink!.open(record);
    expect(normal.message).toMatch(/the next retry would pass the 60s delivery limit\)$/);
    expect(now).toBeGreaterThan(5_000);
  });

  it('gives a delivery at most 3 s more once the job is cancelled while it is under way', async () => {
    const cancelled = new AbortController();
    let now = 0;
    // The job is cancelled while the first request is being answered.
    const server = await receiver([503], () => {
      if (!cancelled.signal.aborted) cancelled.abort();
      return true;
    });
    closers.push(server.close);
    const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: webhook
      url: ${server.url}
      timeout: 60s
`);
    const retry = { now: () => now, sleep: async (ms: number) => void (now += ms), random: () => 1, attempts: 20 };
    const [sink] = createIncidentSinks(policy.incidents, { retry, signal: cancelled.signal });
    const result = await sink!.open(record);
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/^webhook answered HTTP 503: receiver says 503 \(gave up after \d+ attempts: the next retry would pass the 3s limit after the job was cancelled\)$/);
    expect(now).toBeLessThanOrEqual(3_000);
  });

  it('stops a request in flight 3 s after the job is cancelled', async () => {
    const cancelled = new AbortController();
    // The receiver never answers; the job is cancelled while it holds the request.
    const server = await receiver([200], () => {
      cancelled.abort();
      return false;
    });
    closers.push(server.close);
    const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: webhook
      url: ${server.url}
      timeout: 60s
`);
    // Left to its own 60 s timeout, the request would outlive the test's time limit.
    const [sink] = createIncidentSinks(policy.incidents, { retry: { timeoutMs: 60_000 }, signal: cancelled.signal });
    const result = await sink!.open(record);
    expect(result).toEqual({ sink: 'webhook', ok: false, message: 'webhook: stopped: the 3s limit after the job was cancelled was reached' });
    expect(server.received).toHaveLength(1);
  });
});

describe('webhook URLs with credentials', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'canary-webhook-'));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  const PASSWORD = 'pa55w0rd-never-printed';

  it('are refused before the rollout starts, naming the variable or file and never the URL', () => {
    const fromEnv = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: webhook
      url: { env: CRED_WEBHOOK_URL }
`);
    vi.stubEnv('CRED_WEBHOOK_URL', `https://ops:${PASSWORD}@hooks.example.com/canary`);
    let err: unknown;
    try {
      createIncidentSinks(fromEnv.incidents);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(2);
    expect((err as CanaryError).message).toBe(
      'spec.incidents[0].url: environment variable CRED_WEBHOOK_URL holds a URL with a user name or password: credentials in the webhook URL are not supported; sign with secret or use headers, or run with --no-incident to send none',
    );

    const file = join(dir, 'webhook-url');
    writeFileSync(file, `https://ops:${PASSWORD}@hooks.example.com/canary\n`);
    const fromFile = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: slack
      webhookUrl: { file: ${file} }
`);
    expect(() => createIncidentSinks(fromFile.incidents)).toThrowError(
      `spec.incidents[0].webhookUrl: file ${file} holds a URL with a user name or password: credentials in the webhook URL are not supported`,
    );
    expect(() => createIncidentSinks(fromFile.incidents)).not.toThrowError(PASSWORD);
  });

  it('are refused in the policy itself without echoing the URL', () => {
    let message = '';
    try {
      policyFrom(`apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  incidents:\n    - type: webhook\n      url: https://ops:${PASSWORD}@hooks.example.com/canary\n`);
    } catch (e) {
      message = messageOf(e);
    }
    expect(message).toContain('credentials in the webhook URL are not supported; sign with secret or use headers');
    expect(message).not.toContain(PASSWORD);
  });

  it('a request with credentials in its URL fails at once, without quoting the URL', async () => {
    // Reaching send() directly, as a URL that slipped past the checks would.
    const deadline = new Deadline(Date.now, 30_000);
    const attempt = { number: 1, deadline, attemptTimeoutMs: 10_000 };
    const transport = incidentTransport();
    const err = await send(transport, { method: 'POST', url: `http://ops:${PASSWORD}@127.0.0.1:9/hook`, headers: {}, body: '{}' }, 'webhook', attempt).catch((e: unknown) => e);
    deadline.dispose();
    transport.close();
    expect(err).toBeInstanceOf(AttemptError);
    expect((err as AttemptError).retryable).toBe(false);
    expect((err as AttemptError).message).toBe("webhook: the request could not be built (its URL holds a user name or password); check the sink's URL and headers");
    expect((err as AttemptError).message).not.toContain(PASSWORD);
  });
});
