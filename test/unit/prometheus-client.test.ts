import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PrometheusClient, prometheusClientFromSettings, type PrometheusClientOptions } from '../../src/analysis/prometheus-client.js';
import { CanaryError } from '../../src/errors.js';
import type { PrometheusSettings } from '../../src/policy/policy.js';
import { readSecret, redact } from '../../src/secrets.js';
import { closedPort, promError, scalar, startFakePrometheus, vector, type FakePrometheus } from '../support/fake-prometheus.js';

const AT = new Date('2026-01-15T10:21:00.123Z');
const QUERY = 'sum(rate(nginx_ingress_controller_requests{namespace="shop",canary!=""}[1m]))';
const TOKEN = 'tok-3f9a1c77-very-secret';
const PASSWORD = 'p@ss w0rd/secret';

let servers: FakePrometheus[] = [];
let clients: PrometheusClient[] = [];
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'canary-prom-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  clients = [];
});

async function fake(...args: Parameters<typeof startFakePrometheus>): Promise<FakePrometheus> {
  const server = await startFakePrometheus(...args);
  servers.push(server);
  return server;
}

/** A client with fast, observable backoff: no real sleeping. */
function client(url: string, options: Partial<PrometheusClientOptions> = {}) {
  const delays: number[] = [];
  const c = new PrometheusClient({
    url,
    timeoutMs: 2000,
    retries: 2,
    baseDelayMs: 10,
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...options,
  });
  clients.push(c);
  return { c, delays };
}

async function failure(promise: Promise<unknown>): Promise<CanaryError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(CanaryError);
    return err as CanaryError;
  }
  throw new Error('expected the query to fail');
}

describe('PrometheusClient: answers', () => {
  it('sends a form-encoded instant query with the time in seconds (ms precision) and a timeout', async () => {
    const server = await fake({ handler: () => vector([{ value: '1' }]) });
    const { c } = client(server.url, { timeoutMs: 2500 });
    await c.query(QUERY, AT);
    const [req] = server.queries();
    expect(req?.method).toBe('POST');
    expect(req?.headers['content-type']).toContain('application/x-www-form-urlencoded');
    expect(req?.params).toEqual({ query: QUERY, time: '1768472460.123', timeout: '2500ms' });
  });

  it('parses a vector with labels, including NaN and infinities', async () => {
    const server = await fake({
      handler: () =>
        vector([
          { labels: { canary: 'shop-checkout-canary-80', status: '5xx' }, value: '0.0421' },
          { labels: { side: 'nan' }, value: 'NaN' },
          { labels: { side: 'up' }, value: '+Inf' },
          { labels: { side: 'down' }, value: '-Inf' },
        ]),
    });
    const { c } = client(server.url);
    const result = await c.query(QUERY, AT);
    expect(result.resultType).toBe('vector');
    expect(result.warnings).toEqual([]);
    expect(result.samples[0]).toEqual({ labels: { canary: 'shop-checkout-canary-80', status: '5xx' }, value: 0.0421 });
    expect(result.samples[1]?.value).toBeNaN();
    expect(result.samples[2]?.value).toBe(Infinity);
    expect(result.samples[3]?.value).toBe(-Infinity);
  });

  it('parses an empty vector as no samples (for the judge to call inconclusive)', async () => {
    const server = await fake({ handler: () => vector([]) });
    const { c } = client(server.url);
    expect(await c.query(QUERY, AT)).toEqual({ resultType: 'vector', samples: [], warnings: [] });
  });

  it('parses a scalar as one unlabelled sample', async () => {
    const server = await fake({ handler: () => scalar('2.5') });
    const { c } = client(server.url);
    expect(await c.query('scalar(vector(2.5))', AT)).toEqual({ resultType: 'scalar', samples: [{ labels: {}, value: 2.5 }], warnings: [] });
  });

  it('passes Prometheus warnings and infos through', async () => {
    const server = await fake({
      handler: () => ({
        json: {
          status: 'success',
          data: { resultType: 'vector', result: [] },
          warnings: ['partial response: store eu-1 unavailable'],
          infos: ['metric might not be a counter'],
        },
      }),
    });
    const { c } = client(server.url);
    const result = await c.query(QUERY, AT);
    expect(result.warnings).toEqual(['partial response: store eu-1 unavailable', 'info: metric might not be a counter']);
  });

  it('rejects a range vector with advice instead of guessing a value', async () => {
    const server = await fake({
      handler: () => ({ json: { status: 'success', data: { resultType: 'matrix', result: [{ metric: {}, values: [[1, '1']] }] } } }),
    });
    const { c } = client(server.url);
    const err = await failure(c.query('up[5m]', AT));
    expect(err.kind).toBe('query-failed');
    expect(err.message).toContain('range vector (matrix)');
    expect(err.message).toContain('up[5m]');
  });

  it('rejects a sample value that is not a number', async () => {
    const server = await fake({ handler: () => vector([{ value: 'lots' }]) });
    const { c } = client(server.url);
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('query-failed');
    expect(err.message).toContain('"lots"');
  });
});

describe('PrometheusClient: Prometheus errors are not retried', () => {
  it.each([
    [400, 'bad_data', '1:12: parse error: unexpected "}"', 'invalid-input', 2],
    [422, 'execution', 'many-to-many matching not allowed', 'query-failed', 5],
  ])('HTTP %i %s is not retried and names the errorType, the error and the query', async (status, errorType, error, kind, exitCode) => {
    const server = await fake({ handler: () => promError(status, errorType, error) });
    const { c, delays } = client(server.url);
    const err = await failure(c.query(QUERY, AT));
    // bad_data is a broken query in the policy (exit 2); execution errors are Prometheus's (exit 5).
    expect(err.kind).toBe(kind);
    expect(err.exitCode).toBe(exitCode);
    expect(err.message).toContain(errorType);
    expect(err.message).toContain(error);
    expect(err.message).toContain(QUERY);
    expect(err.message).toContain('2026-01-15T10:21:00.123Z');
    expect(server.queries()).toHaveLength(1);
    expect(delays).toEqual([]);
  });
});

describe('PrometheusClient: retries', () => {
  it('retries 503 with growing backoff, then returns the answer', async () => {
    let n = 0;
    const server = await fake({ handler: () => (++n <= 2 ? promError(503, 'unavailable', 'too many queries') : vector([{ value: '7' }])) });
    const { c, delays } = client(server.url, { retries: 3, baseDelayMs: 100 });
    const result = await c.query(QUERY, AT);
    expect(result.samples[0]?.value).toBe(7);
    expect(server.queries()).toHaveLength(3);
    // Exponential with jitter: attempt k waits between half and all of base·2^(k-1).
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeGreaterThanOrEqual(50);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeGreaterThanOrEqual(100);
    expect(delays[1]).toBeLessThanOrEqual(200);
  });

  it('gives up on persistent 5xx as unreachable, with the attempts and the last answer', async () => {
    const server = await fake({ handler: () => promError(503, 'timeout', 'query timed out in expression evaluation') });
    const { c } = client(server.url, { retries: 2 });
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('unreachable');
    expect(err.exitCode).toBe(5);
    expect(err.message).toContain(server.url);
    expect(err.message).toContain('after 3 attempts');
    expect(err.message).toContain('HTTP 503 timeout: query timed out in expression evaluation');
    expect(server.queries()).toHaveLength(3);
  });

  it('a 502 from a proxy with an HTML body is retried and reported', async () => {
    const server = await fake({ handler: () => ({ status: 502, text: '<html><body>Bad Gateway</body></html>', contentType: 'text/html' }) });
    const { c } = client(server.url, { retries: 1 });
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain('after 2 attempts');
    expect(err.message).toContain('HTTP 502');
    expect(err.message).toContain('Bad Gateway');
  });

  it('connection refused: unreachable after retries + 1 attempts, naming the URL and the error', async () => {
    const port = await closedPort();
    const { c, delays } = client(`http://127.0.0.1:${port}`, { retries: 3 });
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain(`Prometheus at http://127.0.0.1:${port} is unreachable after 4 attempts`);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message).toContain(QUERY);
    expect(delays).toHaveLength(3);
  });

  it('connection reset is retried, and succeeds once the server answers', async () => {
    let n = 0;
    const server = await fake({ handler: () => (++n === 1 ? { reset: true } : vector([{ value: '3' }])) });
    const { c } = client(server.url);
    expect((await c.query(QUERY, AT)).samples[0]?.value).toBe(3);
    expect(server.queries()).toHaveLength(2);
  });

  it('connection reset every time ends as unreachable naming ECONNRESET', async () => {
    const server = await fake({ handler: () => ({ reset: true }) });
    const { c } = client(server.url, { retries: 1 });
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain('after 2 attempts');
    expect(err.message).toContain('ECONNRESET');
  });

  it('waits as long as a 429 Retry-After asks', async () => {
    let n = 0;
    const server = await fake({ handler: () => (++n === 1 ? { status: 429, text: 'slow down', headers: { 'retry-after': '3' } } : vector([{ value: '1' }])) });
    const { c, delays } = client(server.url, { retries: 2 });
    expect((await c.query(QUERY, AT)).samples[0]?.value).toBe(1);
    expect(delays).toEqual([3_000]);
  });

  it('gives up at the query deadline however many retries are left, against a server that never answers', async () => {
    const server = await fake({ handler: () => ({ hang: true }) });
    const { c } = client(server.url, { retries: 10, timeoutMs: 100, deadlineMs: 700 });
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(/the 0\.7s deadline for one query \(spec\.prometheus\.deadline\)/);
    expect(server.queries().length).toBeGreaterThan(1);
    expect(server.queries().length).toBeLessThan(11);
  });

  it('a hanging server times out per attempt and ends as unreachable', async () => {
    const server = await fake({ handler: () => ({ hang: true }) });
    const { c } = client(server.url, { retries: 1, timeoutMs: 150 });
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain('no answer within 150 ms');
    expect(err.message).toContain('after 2 attempts');
    expect(server.queries()).toHaveLength(2);
  });
});

describe('PrometheusClient: answers that are not Prometheus', () => {
  it('an HTML login page with HTTP 200 is a clear error naming what was expected', async () => {
    const server = await fake({
      handler: () => ({ text: '<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>', contentType: 'text/html' }),
    });
    const { c } = client(server.url);
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('query-failed');
    expect(err.message).toContain('not Prometheus API JSON');
    expect(err.message).toContain('"status":"success"');
    expect(err.message).toContain('<!DOCTYPE html>');
    expect(server.queries()).toHaveLength(1);
  });

  it('a redirect (login proxy) is not followed and is reported', async () => {
    const server = await fake({ handler: () => ({ status: 302, text: '', headers: { Location: 'https://sso.example.com/login?next=x' } }) });
    const { c } = client(server.url);
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('query-failed');
    expect(err.message).toContain('HTTP 302');
    expect(err.message).toContain('https://sso.example.com/login');
    expect(server.requests).toHaveLength(1);
  });

  it('401 says to check the credentials, without retrying', async () => {
    const server = await fake({ handler: () => ({ status: 401, text: 'Unauthorized' }) });
    const { c } = client(server.url, { bearerToken: TOKEN });
    const err = await failure(c.query(QUERY, AT));
    expect(err.message).toContain('refused access (HTTP 401)');
    expect(err.message).toContain('bearerToken');
    expect(server.queries()).toHaveLength(1);
  });

  it('a 404 (wrong path prefix) points at the prefix', async () => {
    const server = await fake({ prefix: '/prometheus' });
    const base = server.url.replace(/\/prometheus$/, '');
    const { c } = client(base);
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('query-failed');
    expect(err.message).toContain(`${base}/api/v1/query (HTTP 404)`);
    expect(err.message).toContain('path prefix');
  });
});

describe('PrometheusClient: URL, auth and headers', () => {
  it('supports a path prefix, with or without a trailing slash', async () => {
    const server = await fake({ prefix: '/prometheus', handler: () => vector([{ value: '1' }]) });
    for (const url of [server.url, `${server.url}/`]) {
      const { c } = client(url);
      expect((await c.query(QUERY, AT)).samples).toHaveLength(1);
    }
    expect(server.requests.map((r) => r.path)).toEqual(['/prometheus/api/v1/query', '/prometheus/api/v1/query']);
  });

  it('sends the bearer token and a tenant header, and keeps the token out of error messages', async () => {
    // A misbehaving proxy that echoes the Authorization header back in its error text.
    const server = await fake({ handler: (req) => promError(400, 'bad_data', `denied for ${String(req.headers.authorization)}`) });
    const { c } = client(server.url, { bearerToken: TOKEN, headers: { 'X-Scope-OrgID': 'team-shop' } });
    const err = await failure(c.query(QUERY, AT));
    const [req] = server.queries();
    expect(req?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req?.headers['x-scope-orgid']).toBe('team-shop');
    // The whole Authorization value is a registered form: the scheme goes with the token.
    expect(err.message).toContain('denied for [REDACTED]');
    expect(err.message).not.toContain(TOKEN);
    expect(err.message).not.toContain(TOKEN);
  });

  it('sends basic auth and keeps the password out of error messages', async () => {
    const server = await fake({ handler: () => ({ status: 500, text: `upstream rejected password ${PASSWORD}` }) });
    const { c } = client(server.url, { basicAuth: { username: 'grafana', password: PASSWORD }, retries: 0 });
    const err = await failure(c.query(QUERY, AT));
    expect(server.queries()[0]?.headers.authorization).toBe(`Basic ${Buffer.from(`grafana:${PASSWORD}`).toString('base64')}`);
    expect(err.message).toContain('[REDACTED]');
    expect(err.message).not.toContain(PASSWORD);
  });

  it('credentials written in the URL are sent as basic auth and never printed', async () => {
    const port = await closedPort();
    const { c } = client(`http://ops:hunter2secret@127.0.0.1:${port}/prom`, { retries: 0 });
    expect(c.displayUrl).toBe(`http://127.0.0.1:${port}/prom`);
    const err = await failure(c.query(QUERY, AT));
    expect(err.message).toContain(`http://127.0.0.1:${port}/prom`);
    expect(err.message).not.toContain('hunter2secret');

    const server = await fake({ handler: () => vector([]) });
    const { c: c2 } = client(server.url.replace('http://', 'http://ops:hunter2secret@'));
    await c2.query(QUERY, AT);
    expect(server.queries()[0]?.headers.authorization).toBe(`Basic ${Buffer.from('ops:hunter2secret').toString('base64')}`);
  });

  it.each([['ftp://prometheus:9090'], ['prometheus:9090'], ['not a url']])('rejects %s as invalid input', (url) => {
    expect(() => new PrometheusClient({ url, timeoutMs: 1000, retries: 0 })).toThrow(
      expect.objectContaining({ kind: 'invalid-input', message: expect.stringContaining('expected an http:// or https:// URL') }),
    );
  });

  it('rejects an invalid header name and both auth kinds at once', () => {
    expect(() => new PrometheusClient({ url: 'http://p:9090', timeoutMs: 1000, retries: 0, headers: { 'Bad Header': 'x' } })).toThrow(/"Bad Header"/);
    expect(
      () =>
        new PrometheusClient({
          url: 'http://p:9090',
          timeoutMs: 1000,
          retries: 0,
          bearerToken: TOKEN,
          basicAuth: { username: 'u', password: PASSWORD },
        }),
    ).toThrow(/either a bearer token or basic auth/);
  });
});

describe('PrometheusClient: TLS', () => {
  let tls: { key: Buffer; cert: Buffer; caFile: string };

  beforeAll(() => {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile,
    ], { stdio: 'ignore' });
    tls = { key: readFileSync(keyFile), cert: readFileSync(certFile), caFile: certFile };
  });

  it('an unknown CA fails once (no retries) with advice on caFile', async () => {
    const server = await fake({ tls, handler: () => vector([{ value: '1' }]) });
    const { c } = client(server.url, { retries: 3 });
    const err = await failure(c.query(QUERY, AT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain('TLS verification failed');
    expect(err.message).toContain('caFile');
    expect(err.message).toContain('after 1 attempt;');
  });

  it('trusts the server with caFile, or with insecureSkipVerify', async () => {
    const server = await fake({ tls, handler: () => vector([{ value: '1' }]) });
    expect((await client(server.url, { caFile: tls.caFile }).c.query(QUERY, AT)).samples[0]?.value).toBe(1);
    expect((await client(server.url, { insecureSkipVerify: true }).c.query(QUERY, AT)).samples[0]?.value).toBe(1);
  });

  it('an unreadable caFile is invalid input naming the file', () => {
    expect(() => new PrometheusClient({ url: 'https://p:9090', timeoutMs: 1000, retries: 0, caFile: join(dir, 'missing.pem') })).toThrow(
      expect.objectContaining({ kind: 'invalid-input', message: expect.stringContaining('missing.pem') }),
    );
  });
});

describe('prometheusClientFromSettings and secrets', () => {
  const settings = (over: Partial<PrometheusSettings> = {}): PrometheusSettings => ({
    timeoutMs: 2000,
    retries: 0,
    headers: { 'X-Scope-OrgID': { value: 'shop', public: true } },
    insecureSkipVerify: false,
    ...over,
  });

  it('reads the bearer token from the environment and the password from a file', async () => {
    const server = await fake({ handler: () => vector([]) });
    process.env.CANARY_TEST_PROM_TOKEN = TOKEN;
    try {
      const c = prometheusClientFromSettings(settings({ bearerToken: { env: 'CANARY_TEST_PROM_TOKEN' } }), server.url);
      clients.push(c);
      await c.query(QUERY, AT);
      expect(server.queries()[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(server.queries()[0]?.headers['x-scope-orgid']).toBe('shop');
    } finally {
      delete process.env.CANARY_TEST_PROM_TOKEN;
    }
    const file = join(dir, 'password');
    writeFileSync(file, `${PASSWORD}\n`);
    const c = prometheusClientFromSettings(settings({ url: server.url, basicAuth: { username: 'u', password: { file } } }));
    clients.push(c);
    await c.query(QUERY, AT);
    expect(server.queries()[1]?.headers.authorization).toBe(`Basic ${Buffer.from(`u:${PASSWORD}`).toString('base64')}`);
  });

  it('without a URL anywhere, asks for --prometheus', () => {
    expect(() => prometheusClientFromSettings(settings())).toThrow(expect.objectContaining({ kind: 'invalid-input', message: expect.stringContaining('--prometheus') }));
  });

  it('a missing env var or file is invalid input naming it, never a value', () => {
    delete process.env.CANARY_TEST_MISSING;
    expect(() => readSecret({ env: 'CANARY_TEST_MISSING' }, 'spec.prometheus.bearerToken')).toThrow(
      expect.objectContaining({ kind: 'invalid-input', message: expect.stringMatching(/spec\.prometheus\.bearerToken: environment variable CANARY_TEST_MISSING is not set/) }),
    );
    const missing = join(dir, 'nope', 'token');
    expect(() => readSecret({ file: missing }, 'spec.prometheus.bearerToken')).toThrow(
      expect.objectContaining({ kind: 'invalid-input', message: expect.stringContaining(`cannot read secret file ${missing} (ENOENT)`) }),
    );
  });

  it('trims the trailing newline of a secret file and rejects an empty one', () => {
    const file = join(dir, 'token');
    writeFileSync(file, `${TOKEN}\r\n`);
    expect(readSecret({ file }, 'token')).toBe(TOKEN);
    writeFileSync(file, '\n');
    expect(() => readSecret({ file }, 'token')).toThrow(/is empty/);
  });

  it('redact replaces every secret, raw and URL-encoded', () => {
    expect(redact(`a ${TOKEN} b ${encodeURIComponent(PASSWORD)} c ${PASSWORD}`, [TOKEN, PASSWORD, ''])).toBe('a [REDACTED] b [REDACTED] c [REDACTED]');
  });
});
