import http from 'node:http';
import type { AddressInfo } from 'node:net';

// Stands in for ingress-nginx's canary-by-header: a loopback proxy that sends a request carrying
// the routing header (with the routing value) to the "canary" server and every other request to
// "stable". Each backend records what it received, so tests can tell who served what.

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/** What a backend answers; a promise holds the response until the test lets it go. */
export type Handler = (req: Received) => Answer | Promise<Answer>;

export interface Backend {
  url: string;
  received: Received[];
  handler: Handler;
  close(): Promise<void>;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const closeServer = (server: http.Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

export async function backend(handler: Handler): Promise<Backend> {
  const b: Backend = { url: '', received: [], handler, close: async () => undefined };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      const got: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
      b.received.push(got);
      const out = await b.handler(got);
      res.writeHead(out.status, { 'content-type': 'text/plain', ...out.headers });
      res.end(out.body);
    });
  });
  b.url = await listen(server);
  b.close = () => closeServer(server);
  return b;
}

export interface HeaderProxy {
  url: string;
  canary: Backend;
  stable: Backend;
  close(): Promise<void>;
}

/**
 * The routing: header `name` equal to `value` (ingress-nginx: "always" when no value is set) → canary.
 * With `routed`, a header-carrying request goes to the canary only while `routed()` says the
 * cluster's route sends it there (read per request, as a data plane following the API would).
 */
export async function headerProxy(name: string, value: string, canary: Handler, stable: Handler, routed?: () => Promise<boolean>): Promise<HeaderProxy> {
  const c = await backend(canary);
  const s = await backend(stable);
  const server = http.createServer(async (req, res) => {
    const toCanary = req.headers[name.toLowerCase()] === value && (routed ? await routed().catch(() => false) : true);
    const target = new URL(req.url ?? '/', toCanary ? c.url : s.url);
    const fwd = http.request(target, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    fwd.on('error', () => {
      res.writeHead(502);
      res.end('bad gateway');
    });
    req.pipe(fwd);
  });
  const url = await listen(server);
  return {
    url,
    canary: c,
    stable: s,
    close: async () => {
      await closeServer(server);
      await c.close();
      await s.close();
    },
  };
}
