import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

// A proxy of the test's own between one CLI process and the real API server. It terminates TLS
// with the API server's own certificate (so the CLI's kubeconfig keeps the same CA) and forwards
// every request, which lets a test see each call and hold chosen ones until it releases them:
// "the deploy's raise PATCH is in flight" becomes a state the test waits for, not a sleep.

export interface SeenCall {
  method: string;
  path: string;
  /** Upstream status, 0 while held or when it never got one. */
  status: number;
  body: string;
}

export interface HoldRule {
  method?: string;
  /** Substring of the path (query string excluded). */
  path?: string;
  /** Only requests whose body contains this. */
  bodyIncludes?: string;
  /** How many matching requests to hold (default 1). */
  times?: number;
}

export interface Gate {
  /** Requests held so far. */
  readonly held: SeenCall[];
  /** Lets the held requests (and later matching ones) through. */
  release(): void;
}

export interface ApiProxy {
  readonly port: number;
  readonly calls: SeenCall[];
  hold(rule: HoldRule): Gate;
  /** While on, requests are accepted and never answered, as behind a dropped route. */
  blackhole(on: boolean): void;
  close(): Promise<void>;
}

interface ActiveGate {
  rule: HoldRule;
  remaining: number;
  released: boolean;
  waiting: (() => void)[];
  held: SeenCall[];
}

const matches = (rule: HoldRule, call: SeenCall): boolean =>
  (!rule.method || rule.method === call.method) && (!rule.path || call.path.includes(rule.path)) && (!rule.bodyIncludes || call.body.includes(rule.bodyIncludes));

export async function startApiProxy(upstream: { port: number; ca: string; key: string; cert: string }): Promise<ApiProxy> {
  const calls: SeenCall[] = [];
  const gates: ActiveGate[] = [];
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  let blackholed = false;

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, call: SeenCall) => {
    const headers = { ...req.headers, host: `127.0.0.1:${upstream.port}` };
    const up = https.request(
      { host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers, ca: upstream.ca },
      (upRes) => {
        call.status = upRes.statusCode ?? 0;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => {
      // The API server is down: the client sees its connection dropped, as it would without us.
      req.socket.destroy();
    });
    res.on('close', () => up.destroy());
    up.end(body);
  };

  const server = https.createServer({ key: upstream.key, cert: upstream.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const call: SeenCall = { method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0] ?? '/', status: 0, body: body.toString('utf8') };
      calls.push(call);
      if (blackholed) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      const gate = gates.find((g) => !g.released && g.remaining > 0 && matches(g.rule, call));
      if (gate) {
        gate.remaining -= 1;
        gate.held.push(call);
        gate.waiting.push(() => forward(req, res, body, call));
        return;
      }
      forward(req, res, body, call);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });

  return {
    port: (server.address() as AddressInfo).port,
    calls,
    hold(rule) {
      const gate: ActiveGate = { rule, remaining: rule.times ?? 1, released: false, waiting: [], held: [] };
      gates.push(gate);
      return {
        held: gate.held,
        release() {
          gate.released = true;
          for (const go of gate.waiting.splice(0)) go();
        },
      };
    },
    blackhole(on) {
      blackholed = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const g of gates) g.waiting.length = 0;
        for (const res of hanging) res.destroy();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
