import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import net from 'node:net';

// A loopback stand-in for Prometheus's HTTP API: /api/v1/query (GET or form POST) is answered by a
// handler; it can also hang, reset the connection, or answer with any status and body. It records
// every request it saw, headers included, so tests can assert what a client really sent.

export interface SeenRequest {
  method: string;
  /** Path without the query string, e.g. "/prometheus/api/v1/query". */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Query-string and form-body parameters merged (body wins). */
  params: Record<string, string>;
  body: string;
}

export type Reply =
  | { status?: number; json: unknown; headers?: Record<string, string> }
  | { status?: number; text: string; contentType?: string; headers?: Record<string, string> }
  /** Never answer (the socket stays open until the client gives up or the server closes). */
  | { hang: true }
  /** Drop the TCP connection with a reset before answering. */
  | { reset: true };

export type Handler = (req: SeenRequest) => Reply | Promise<Reply>;

export interface FakePrometheusOptions {
  handler?: Handler;
  /** Path prefix the API lives under, e.g. "/prometheus" (Mimir-style). */
  prefix?: string;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface FakePrometheus {
  /** Base URL including the prefix, e.g. http://127.0.0.1:41234/prometheus. */
  readonly url: string;
  readonly port: number;
  readonly requests: SeenRequest[];
  /** Only the requests that reached the query endpoint. */
  queries(): SeenRequest[];
  setHandler(handler: Handler): void;
  close(): Promise<void>;
}

/** A success answer holding an instant vector. Values may be numbers or Prometheus strings ("NaN", "+Inf"). */
export function vector(
  samples: Array<{ labels?: Record<string, string>; value: number | string; time?: number }>,
  extra: { warnings?: string[] } = {},
): Reply {
  return {
    json: {
      status: 'success',
      data: {
        resultType: 'vector',
        result: samples.map((s) => ({ metric: s.labels ?? {}, value: [s.time ?? 0, promValue(s.value)] })),
      },
      ...(extra.warnings ? { warnings: extra.warnings } : {}),
    },
  };
}

export function scalar(value: number | string, time = 0): Reply {
  return { json: { status: 'success', data: { resultType: 'scalar', result: [time, promValue(value)] } } };
}

/** An error answer as Prometheus sends it, e.g. promError(400, 'bad_data', 'parse error …'). */
export function promError(status: number, errorType: string, error: string): Reply {
  return { status, json: { status: 'error', errorType, error } };
}

function promValue(value: number | string): string {
  if (typeof value === 'string') return value;
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

export async function startFakePrometheus(options: FakePrometheusOptions = {}): Promise<FakePrometheus> {
  let handler: Handler = options.handler ?? (() => vector([]));
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const hanging = new Set<http.ServerResponse>();

  const listener: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const url = new URL(req.url ?? '/', 'http://fake');
        const params: Record<string, string> = Object.fromEntries(url.searchParams);
        if ((req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
          Object.assign(params, Object.fromEntries(new URLSearchParams(body)));
        }
        const seen: SeenRequest = { method: req.method ?? 'GET', path: url.pathname, headers: req.headers, params, body };
        requests.push(seen);
        if (url.pathname !== `${prefix}/api/v1/query`) {
          res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
          return;
        }
        let reply: Reply;
        try {
          reply = await handler(seen);
        } catch (err) {
          reply = { status: 500, text: `fake-prometheus handler threw: ${String(err)}` };
        }
        send(reply, req, res);
      })();
    });
  };

  const send = (reply: Reply, req: http.IncomingMessage, res: http.ServerResponse) => {
    if ('hang' in reply) {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if ('reset' in reply) {
      const socket = req.socket as Socket & { resetAndDestroy?: () => void };
      if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
      else socket.destroy();
      return;
    }
    if ('json' in reply) {
      res.writeHead(reply.status ?? 200, { 'Content-Type': 'application/json', ...reply.headers }).end(JSON.stringify(reply.json));
    } else {
      res.writeHead(reply.status ?? 200, { 'Content-Type': reply.contentType ?? 'text/plain; charset=utf-8', ...reply.headers }).end(reply.text);
    }
  };

  const server: http.Server | https.Server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, listener)
    : http.createServer(listener);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // TLS servers see the raw TCP socket on 'connection' and the TLS socket on 'secureConnection'.
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}${prefix}`,
    port,
    requests,
    queries: () => requests.filter((r) => r.path === `${prefix}/api/v1/query`),
    setHandler(next) {
      handler = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port with nothing listening on it, for "connection refused". */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
