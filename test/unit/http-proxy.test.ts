// The one HTTP stack behind a corporate proxy: a real CONNECT proxy on loopback, real targets on
// loopback, and the proxy settings users expect (HTTPS_PROXY, http_proxy, NO_PROXY).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import httpsServer from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PrometheusClient } from '../../src/analysis/prometheus-client.js';
import { incidentTransport } from '../../src/incident/http.js';
import { createIncidentSinks } from '../../src/incident/sinks.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { startFakePrometheus, vector, type FakePrometheus } from '../support/fake-prometheus.js';
import { policyFrom, rolledBackRecord } from '../support/incident-fixtures.js';

const QUERY = 'sum(rate(nginx_ingress_controller_requests[1m]))';
const AT = new Date('2026-01-15T10:21:00Z');
const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

interface Proxy {
  url: string;
  /** What reached the proxy: "CONNECT host:port" for tunnels, "METHOD absolute-URL" for forwarded requests. */
  seen: string[];
  close(): Promise<void>;
}

/** A forward proxy as corporate networks run them: CONNECT tunnels for https, absolute-URI forwarding for http. */
async function startProxy(): Promise<Proxy> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
    const target = new URL(req.url ?? '');
    const upstream = http.request({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end('proxy: upstream failed'));
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url ?? ''}`);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host ?? '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [upstream, client]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An incident receiver on loopback that counts deliveries. */
async function startReceiver(): Promise<{ url: string; bodies: string[]; close(): Promise<void> }> {
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(202).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/canary`,
    bodies,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function proxyEnv(vars: Record<string, string>): void {
  for (const name of PROXY_VARS) vi.stubEnv(name, vars[name] ?? '');
}

let dir: string;
let tls: { key: Buffer; cert: Buffer; caFile: string };
let record: RolloutRecord;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'canary-proxy-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], {
    stdio: 'ignore',
  });
  tls = { key: readFileSync(keyFile), cert: readFileSync(certFile), caFile: certFile };
  record = await rolledBackRecord();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function https(): Promise<FakePrometheus> {
  const server = await startFakePrometheus({ tls, handler: () => vector([{ value: '42' }]) });
  cleanups.push(() => server.close());
  return server;
}

function prometheus(url: string): PrometheusClient {
  const c = new PrometheusClient({ url, timeoutMs: 5_000, retries: 0, caFile: tls.caFile });
  cleanups.push(() => c.close());
  return c;
}

function webhook(url: string) {
  const policy = policyFrom(`apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  incidents:\n    - type: webhook\n      url: ${url}\n`);
  const transport = incidentTransport();
  cleanups.push(() => transport.close());
  const [sink] = createIncidentSinks(policy.incidents, { transport, retry: { sleep: async () => undefined } });
  return sink!;
}

describe('HTTPS_PROXY: https targets go through a CONNECT tunnel', () => {
  it('Prometheus over https is reached through the proxy with CONNECT, and the custom CA still verifies the server', async () => {
    const proxy = await startProxy();
    cleanups.push(() => proxy.close());
    const server = await https();
    proxyEnv({ HTTPS_PROXY: proxy.url });
    const result = await prometheus(server.url).query(QUERY, AT);
    expect(result.samples[0]?.value).toBe(42);
    const port = new URL(server.url).port;
    // A tunnel, never the query in the clear to the proxy.
    expect(proxy.seen).toEqual([`CONNECT 127.0.0.1:${port}`]);
    expect(server.queries()).toHaveLength(1);
  });

  it('honours the lower-case https_proxy too', async () => {
    const proxy = await startProxy();
    cleanups.push(() => proxy.close());
    const server = await https();
    proxyEnv({ https_proxy: proxy.url });
    await prometheus(server.url).query(QUERY, AT);
    expect(proxy.seen).toEqual([`CONNECT 127.0.0.1:${new URL(server.url).port}`]);
  });
});

describe('incident sinks over https', () => {
  it('a webhook signed by an internal CA (the sink\'s caFile) is delivered through the CONNECT tunnel', async () => {
    const proxy = await startProxy();
    cleanups.push(() => proxy.close());
    const bodies: string[] = [];
    const server = httpsServer.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(202).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    });
    const port = (server.address() as AddressInfo).port;
    proxyEnv({ HTTPS_PROXY: proxy.url });
    const policy = (caFile: string) =>
      policyFrom(`apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  incidents:\n    - type: webhook\n      url: https://127.0.0.1:${port}/hooks\n${caFile}`);
    const retry = { sleep: async () => undefined, attempts: 1 };
    // Without the CA the receiver's certificate is refused, tunnel or not.
    const [untrusted] = createIncidentSinks(policy('').incidents, { retry });
    expect((await untrusted!.open(record)).ok).toBe(false);
    const [trusted] = createIncidentSinks(policy(`      caFile: ${tls.caFile}\n`).incidents, { retry });
    const result = await trusted!.open(record);
    expect(result).toMatchObject({ ok: true });
    expect(bodies).toHaveLength(1);
    expect(proxy.seen).toEqual([`CONNECT 127.0.0.1:${port}`, `CONNECT 127.0.0.1:${port}`]);
  });
});

describe('HTTP_PROXY: http targets are forwarded by the proxy', () => {
  it('an incident webhook is delivered through http_proxy', async () => {
    const proxy = await startProxy();
    cleanups.push(() => proxy.close());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    proxyEnv({ http_proxy: proxy.url });
    const result = await webhook(receiver.url).open(record);
    expect(result.ok).toBe(true);
    expect(proxy.seen).toEqual([`POST ${receiver.url}`]);
    expect(receiver.bodies).toHaveLength(1);
  });
});

describe('NO_PROXY', () => {
  it('sends hosts it names directly, for Prometheus and incidents alike', async () => {
    const proxy = await startProxy();
    cleanups.push(() => proxy.close());
    const server = await https();
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    proxyEnv({ HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' });
    expect((await prometheus(server.url).query(QUERY, AT)).samples[0]?.value).toBe(42);
    expect((await webhook(receiver.url).open(record)).ok).toBe(true);
    expect(receiver.bodies).toHaveLength(1);
    expect(proxy.seen).toEqual([]);
  });

  it('lower-case no_proxy works too, and a host it does not name still goes through the proxy', async () => {
    const proxy = await startProxy();
    cleanups.push(() => proxy.close());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    proxyEnv({ http_proxy: proxy.url, no_proxy: 'metrics.internal' });
    expect((await webhook(receiver.url).open(record)).ok).toBe(true);
    expect(proxy.seen).toEqual([`POST ${receiver.url}`]);
    proxyEnv({ http_proxy: proxy.url, no_proxy: '127.0.0.1' });
    proxy.seen.length = 0;
    const second = await startReceiver();
    cleanups.push(() => second.close());
    expect((await webhook(second.url).open(record)).ok).toBe(true);
    expect(proxy.seen).toEqual([]);
  });
});
