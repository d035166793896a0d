import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

// The attacker's log-reader's best friend: a loopback server that answers with whatever status a
// test asks for and echoes the request it got — request line, every header, the body — back in the
// answer, as misconfigured gateways, proxies and debug endpoints do. It plays Prometheus, every
// incident sink, an HTTP proxy (absolute-URI requests) and a Kubernetes API front-end.
//
// The status and shape come from the first path segment: /s<status><shape>/… where shape is
//   j  JSON with every "/" written as "\/" (as PHP, some Java stacks and Go's JS-safe encoders do),
//   p  a Prometheus error envelope {"status":"error","errorType":…,"error":<echo>} (also "\/"),
//   k  a Kubernetes metav1.Status whose message is the echo (also "\/"),
//   t  plain text.
// Anything else answers 500 with text. Prometheus's `time()` is answered truthfully on /s200p so a
// live deploy can pass its clock preflight and then meet the echo on every real query.

export interface EchoServer {
  readonly url: string;
  readonly port: number;
  /** Every request seen (request line, headers, body), for tests that check what was sent. */
  readonly seen: string[];
  /**
   * While true, /s200p answers every query as a healthy Prometheus would (100 requests, 0 errors),
   * so a live deploy passes its preflight and starts; set it false to meet the echo.
   */
  healthyPrometheus: boolean;
  close(): Promise<void>;
}

export function echoText(req: http.IncomingMessage, body: string): string {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  return `${lines.join('\n')}\n\n${body}`;
}

/** JSON as some servers write it: every "/" escaped as "\/" (valid JSON; JSON.parse gives "/" back). */
export const slashEscapedJson = (value: unknown): string => JSON.stringify(value).replace(/\//g, '\\/');

function decodeForm(body: string): Record<string, string> {
  try {
    return Object.fromEntries(new URLSearchParams(body));
  } catch {
    return {};
  }
}

export async function startEchoServer(): Promise<EchoServer> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  // eslint-disable-next-line prefer-const
  let echoServer: EchoServer;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const echo = echoText(req, body);
      seen.push(echo);
      // A proxy gets "GET http://host/path"; everyone else gets "/path".
      const path = new URL(req.url ?? '/', 'http://echo.invalid').pathname;
      const m = /^\/s(\d{3})([jpkt])(?:\/|$)/.exec(path);
      const status = m ? Number(m[1]) : 500;
      const shape = m?.[2] ?? 't';
      const params = { ...Object.fromEntries(new URL(req.url ?? '/', 'http://echo.invalid').searchParams), ...decodeForm(body) };
      const headers: Record<string, string> = { 'X-Echo': 'yes' };
      if (status >= 300 && status < 400) headers['Location'] = `http://127.0.0.1:1/login?next=${encodeURIComponent(echo)}`;
      if (status === 429) headers['Retry-After'] = '0';
      if (shape === 'p' && status === 200 && echoServer.healthyPrometheus && params['query'] !== 'time()') {
        const error = /status=~/.test(params['query'] ?? '');
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [Date.now() / 1000, error ? '0' : '100'] }] } }));
        return;
      }
      if (shape === 'p' && params['query'] === 'time()') {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [Date.now() / 1000, String(Date.now() / 1000)] } }));
        return;
      }
      let text: string;
      let type = 'application/json';
      switch (shape) {
        case 'j':
          text = slashEscapedJson({ echo, request: { line: echo.split('\n')[0], body } });
          break;
        case 'p':
          text = slashEscapedJson({ status: 'error', errorType: status === 400 ? 'bad_data' : 'internal', error: echo });
          break;
        case 'k':
          text = slashEscapedJson({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: echo, reason: status === 404 ? 'NotFound' : 'InternalError', code: status });
          break;
        default:
          text = echo;
          type = 'text/plain; charset=utf-8';
      }
      res.writeHead(status, { ...headers, 'Content-Type': type }).end(text);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  echoServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    healthyPrometheus: false,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return echoServer;
}
