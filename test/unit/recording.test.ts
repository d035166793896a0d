import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PrometheusClient } from '../../src/analysis/prometheus-client.js';
import { loadRecording, RecordingSource, ReplaySource, writeRecording, type Recording } from '../../src/analysis/recording.js';
import type { QueryResult } from '../../src/analysis/types.js';
import { CanaryError, messageOf } from '../../src/errors.js';
import { closedPort, promError, scalar, startFakePrometheus, vector, type FakePrometheus } from '../support/fake-prometheus.js';

const START = new Date('2026-01-15T10:05:00.000Z');
const minute = (n: number) => new Date(START.getTime() + n * 60_000);
const ERRORS = 'sum(rate(nginx_ingress_controller_requests{namespace="shop",canary!="",status=~"5.."}[1m]))';
const TOTAL = 'sum(rate(nginx_ingress_controller_requests{namespace="shop",canary!=""}[1m]))';
const BROKEN = 'sum(rate(nginx_ingress_controller_requests{namespace="shop"[1m]))';
const TOKEN = 'rec-token-5b1d0e-secret';
const META = { target: 'checkout', namespace: 'shop', startedAt: START.toISOString(), policy: 'default' };

let dir: string;
let servers: FakePrometheus[] = [];
let clients: PrometheusClient[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'canary-rec-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  clients = [];
});

function client(url: string, retries = 1): PrometheusClient {
  const c = new PrometheusClient({ url, timeoutMs: 2000, retries, bearerToken: TOKEN, headers: { 'X-Scope-OrgID': 'shop' }, baseDelayMs: 1, sleep: async () => {} });
  clients.push(c);
  return c;
}

/** Prometheus-like answers that depend on the query and the time, so a mix-up would show. */
async function prometheus(): Promise<FakePrometheus> {
  const server = await startFakePrometheus({
    handler: (req) => {
      const t = Number(req.params.time);
      const m = Math.round((t * 1000 - START.getTime()) / 60_000);
      if (req.params.query === BROKEN) return promError(400, 'bad_data', '1:58: parse error: unexpected "["');
      if (req.params.query === ERRORS) return vector([{ labels: { canary: 'shop-checkout-canary-80' }, value: m === 3 ? 'NaN' : String(m * 0.01) }], { warnings: m === 2 ? ['partial response'] : [] });
      if (req.params.query === TOTAL) return vector([{ labels: { canary: 'shop-checkout-canary-80' }, value: String(100 + m) }]);
      return scalar('+Inf');
    },
  });
  servers.push(server);
  return server;
}

async function rejected(p: Promise<unknown>): Promise<CanaryError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CanaryError);
    return err as CanaryError;
  }
  throw new Error('expected the query to fail');
}

type Outcome = { ok: QueryResult } | { err: { kind: string; message: string } };
async function outcome(p: Promise<QueryResult>): Promise<Outcome> {
  try {
    return { ok: await p };
  } catch (err) {
    if (!(err instanceof CanaryError)) throw err;
    return { err: { kind: err.kind, message: err.message } };
  }
}

const ASKED: Array<[string, Date]> = [
  [TOTAL, minute(1)],
  [ERRORS, minute(1)],
  [ERRORS, minute(2)],
  [ERRORS, minute(3)],
  ['vector(1) / 0', minute(3)],
  [BROKEN, minute(4)],
];

describe('record → write → load → replay', () => {
  it('replays exactly what was answered live, errors included, on the recorded times', async () => {
    const server = await prometheus();
    const recorder = new RecordingSource(client(server.url), META);
    const live: Outcome[] = [];
    for (const [q, at] of ASKED) live.push(await outcome(recorder.query(q, at)));
    expect(recorder.size).toBe(ASKED.length);

    const file = join(dir, 'nested', 'roundtrip.json');
    writeRecording(file, recorder.recording({ description: 'round trip' }));
    const replay = ReplaySource.fromFile(file);
    const replayed: Outcome[] = [];
    for (const [q, at] of ASKED) replayed.push(await outcome(replay.query(q, at)));

    expect(replayed).toEqual(live);
    // The answers really are the varied ones, not one repeated.
    expect(live[0]).toEqual({ ok: { resultType: 'vector', samples: [{ labels: { canary: 'shop-checkout-canary-80' }, value: 101 }], warnings: [] } });
    expect(live[2]).toMatchObject({ ok: { warnings: ['partial response'] } });
    expect((live[3] as { ok: QueryResult }).ok.samples[0]?.value).toBeNaN();
    expect(live[5]).toMatchObject({ err: { kind: 'invalid-input', message: expect.stringContaining('bad_data') } });

    expect(replay.meta).toEqual({ ...META, description: 'round trip', prometheus: server.url });
    expect(replay.startedAt.toISOString()).toBe(START.toISOString());
    // Replay never goes to Prometheus.
    expect(server.queries()).toHaveLength(ASKED.length);
  });

  it('a recorded Prometheus error replays as the same error with the same exit code', async () => {
    const server = await prometheus();
    const recorder = new RecordingSource(client(server.url), META);
    const live = await rejected(recorder.query(BROKEN, minute(4)));
    const replay = new ReplaySource(recorder.recording(), 'mem.json');
    const again = await rejected(replay.query(BROKEN, minute(4)));
    expect(again.kind).toBe('invalid-input');
    expect(again.exitCode).toBe(2);
    expect(again.message).toBe(live.message);
    expect(again.message).toContain('parse error: unexpected "["');
  });

  it('an unreachable Prometheus is recorded (status 0) and replays as unreachable', async () => {
    const port = await closedPort();
    const recorder = new RecordingSource(client(`http://127.0.0.1:${port}`, 2), META);
    const live = await outcome(recorder.query(TOTAL, minute(1)));
    const rec = recorder.recording();
    expect(rec.entries[0]).toMatchObject({ status: 0, body: null, attempts: 3, error: expect.stringContaining('ECONNREFUSED') });
    const replayed = await outcome(new ReplaySource(rec, 'mem.json').query(TOTAL, minute(1)));
    expect(replayed).toEqual(live);
    expect(replayed).toMatchObject({ err: { kind: 'unreachable', message: expect.stringContaining('after 3 attempts') } });
  });

  it('the file holds the raw answers and no credentials', async () => {
    const server = await prometheus();
    const url = server.url.replace('http://', 'http://ops:urlpass-9z@');
    const c = new PrometheusClient({ url, timeoutMs: 2000, retries: 0 });
    clients.push(c);
    const recorder = new RecordingSource(c, META);
    await recorder.query(TOTAL, minute(1));
    const recorderWithToken = new RecordingSource(client(server.url), META);
    await recorderWithToken.query(TOTAL, minute(1));

    for (const [name, rec] of [['a.json', recorder.recording()], ['b.json', recorderWithToken.recording()]] as const) {
      const file = join(dir, name);
      writeRecording(file, rec);
      const text = readFileSync(file, 'utf8');
      expect(text).not.toContain('urlpass-9z');
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain('X-Scope-OrgID');
      const parsed = JSON.parse(text) as Recording;
      expect(parsed).toMatchObject({ format: 'canary-recording', version: 1, meta: { prometheus: server.url } });
      expect(parsed.entries).toEqual([
        {
          query: TOTAL,
          time: '2026-01-15T10:06:00.000Z',
          status: 200,
          body: { status: 'success', data: { resultType: 'vector', result: [{ metric: { canary: 'shop-checkout-canary-80' }, value: [0, '101'] }] } },
          attempts: 1,
        },
      ]);
    }
  });
});

describe('replay misses', () => {
  const recording: Recording = {
    format: 'canary-recording',
    version: 1,
    createdAt: '2026-01-16T08:00:00.000Z',
    meta: META,
    entries: [1, 2, 3].map((m) => ({ query: TOTAL, time: minute(m).toISOString(), status: 200, body: { status: 'success', data: { resultType: 'vector', result: [] } } })),
  };

  it('a query not in the recording names the file, query, time and what the file holds', async () => {
    const replay = new ReplaySource(recording, 'examples/recordings/x.json');
    const err = await rejected(replay.query(ERRORS, new Date('2026-01-15T10:21:00.000Z')));
    expect(err.kind).toBe('recording-miss');
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(
      `recording examples/recordings/x.json has no answer for query ${ERRORS} at 2026-01-15T10:21:00.000Z ` +
        '(it holds 3 answers from 2026-01-15T10:06:00.000Z to 2026-01-15T10:08:00.000Z); ' +
        'this query is not in it at any time (the policy or target may differ from the one recorded); ' +
        're-record it with canary backtest --record',
    );
  });

  it('a known query at an unrecorded time points at the nearest recorded time; matching is to the millisecond', async () => {
    const replay = new ReplaySource(recording, 'x.json');
    await expect(replay.query(TOTAL, minute(2))).resolves.toMatchObject({ samples: [] });
    const err = await rejected(replay.query(TOTAL, new Date(minute(2).getTime() + 1)));
    expect(err.kind).toBe('recording-miss');
    expect(err.message).toContain('the nearest recorded time for this query is 2026-01-15T10:07:00.000Z');
  });
});

describe('loadRecording rejects bad files', () => {
  const good = (): Record<string, unknown> => ({
    format: 'canary-recording',
    version: 1,
    createdAt: '2026-01-16T08:00:00.000Z',
    meta: META,
    entries: [{ query: TOTAL, time: minute(1).toISOString(), status: 200, body: null }],
  });
  const write = (name: string, content: string) => {
    const file = join(dir, name);
    writeFileSync(file, content);
    return file;
  };
  const rejection = (file: string) => {
    try {
      loadRecording(file);
    } catch (err) {
      expect(err).toBeInstanceOf(CanaryError);
      expect((err as CanaryError).kind).toBe('invalid-input');
      return messageOf(err);
    }
    throw new Error('expected the recording to be rejected');
  };

  it('loads a good file', () => {
    expect(loadRecording(write('good.json', JSON.stringify(good()))).entries).toHaveLength(1);
  });

  it('a missing file', () => {
    const file = join(dir, 'absent.json');
    expect(rejection(file)).toBe(`cannot read recording ${file} (ENOENT); expected a canary recording JSON file`);
  });

  it('not JSON', () => {
    const file = write('bad.json', '{"format": "canary-recording",');
    expect(rejection(file)).toMatch(new RegExp(`^recording ${file} is not valid JSON .*expected a canary recording made with --record$`));
  });

  it('some other JSON', () => {
    const file = write('other.json', JSON.stringify({ status: 'success', data: {} }));
    expect(rejection(file)).toBe(`${file} is not a canary recording: expected "format": "canary-recording", got no "format"`);
  });

  it('a newer version', () => {
    const file = write('v2.json', JSON.stringify({ ...good(), version: 2 }));
    expect(rejection(file)).toContain(`recording ${file} has version 2; this canary reads version 1`);
  });

  it('malformed entries and meta, each named by path', () => {
    const bad = good();
    bad.entries = [{ query: TOTAL, time: 'yesterday', status: 200, body: null }, { query: '', time: minute(2).toISOString(), status: 'ok', body: null }];
    bad.meta = { ...META, startedAt: undefined };
    const message = rejection(write('malformed.json', JSON.stringify(bad)));
    expect(message).toContain(`recording ${join(dir, 'malformed.json')} is malformed`);
    expect(message).toContain('meta.startedAt: expected the rollout start time as an ISO 8601 time');
    expect(message).toContain('entries[0].time: expected the query time as an ISO 8601 time');
    expect(message).toContain('entries[1].query: expected the PromQL query');
    expect(message).toContain('entries[1].status: expected an HTTP status (0 for a network error)');
  });
});

describe('a token in the Prometheus URL\'s query string', () => {
  it('a proxy echoing the URL in a 502 body puts the token in neither the error message nor the --record file', async () => {
    const QS_TOKEN = 'qs-tok-5b7e21d0-never-shown';
    const seen: string[] = [];
    // A loopback "proxy" that answers 502 with the full URL it was asked for, token included.
    const proxy = createServer((req, res) => {
      seen.push(req.url ?? '');
      req.resume();
      req.on('end', () => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`upstream failed for http://${req.headers.host ?? ''}${req.url ?? ''}`);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/prom?access_token=${QS_TOKEN}`;
      const c = new PrometheusClient({ url, timeoutMs: 2000, retries: 1, sleep: async () => undefined });
      clients.push(c);
      const recorder = new RecordingSource(c, META);
      const err = await rejected(recorder.query(TOTAL, minute(1)));
      // The token was sent (the proxy saw it) and the 502 really echoed it.
      expect(seen[0]).toContain(QS_TOKEN);
      expect(err.kind).toBe('unreachable');
      expect(err.message).toContain('HTTP 502');
      expect(err.message).toContain('access_token=[REDACTED]');
      expect(err.message).not.toContain(QS_TOKEN);
      const direct = await rejected(c.query(TOTAL, minute(2)));
      expect(direct.message).not.toContain(QS_TOKEN);

      const file = join(dir, 'token-in-url.json');
      writeRecording(file, recorder.recording());
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('upstream failed for');
      expect(text).not.toContain(QS_TOKEN);
      expect((JSON.parse(text) as Recording).meta.prometheus).toBe(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}/prom`);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
