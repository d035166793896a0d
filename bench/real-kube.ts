// A real kube-apiserver for the start-up benchmark: started with ../shared/kube/up.sh in a
// temporary directory, seeded through the admin kubeconfig, stopped with down.sh. A bare API
// server runs no controllers, so the bench plays the Deployment controller by writing /status.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { parse } from 'yaml';

export interface RealKube {
  readonly server: string;
  readonly adminKubeconfig: string;
  /** One JSON request as cluster admin; rejects on a status ≥ 400 with the server's message. */
  call(method: string, path: string, body?: unknown, contentType?: string): Promise<unknown>;
  /** Opens a watch and resolves once the server has answered its headers; events go to onEvent. */
  watch(path: string, onEvent: (type: string, object: KubeObject) => void): Promise<() => void>;
  stop(): void;
}

export interface KubeObject {
  metadata?: { name?: string; resourceVersion?: string; generation?: number; annotations?: Record<string, string> };
}

/** Where up.sh lives: $CANARY_KUBE_DIR, or shared/kube beside the repository (or its worktree parent). */
export function findKubeScripts(root: string): string | undefined {
  const candidates = [process.env['CANARY_KUBE_DIR'], join(root, '..', 'shared', 'kube'), join(dirname(dirname(root)), 'shared', 'kube')];
  return candidates.find((d): d is string => Boolean(d) && existsSync(join(d as string, 'up.sh')));
}

/** Why the real API server cannot be started here, or undefined when it can. */
export function whyNoKube(root: string): string | undefined {
  const scripts = findKubeScripts(root);
  if (!scripts) return 'no ../shared/kube/up.sh beside the repository (set CANARY_KUBE_DIR)';
  const etcd = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  if (etcd.status !== 0 && !process.env['ETCD']) return 'etcd is not installed (apt-get install etcd-server)';
  return undefined;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port whose etcd companions (PORT+10000, PORT+10001, as up.sh picks them) are free too. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i += 1) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    if ((await portFree(port)) && (await portFree(port + 10000)) && (await portFree(port + 10001))) return port;
  }
  throw new Error('no free port for kube-apiserver and etcd');
}

export async function startRealKube(root: string): Promise<RealKube> {
  const scripts = findKubeScripts(root);
  if (!scripts) throw new Error('no shared/kube/up.sh');
  // Other processes on this machine take ports too: a port found free can be gone by the time
  // kube-apiserver binds it, so a start that lost that race is tried again on another port.
  let dir = '';
  let stop = () => undefined as void;
  for (let attempt = 1; ; attempt += 1) {
    const d = mkdtempSync(join(tmpdir(), 'canary-bench-kube-'));
    const port = await freePort();
    const up = spawnSync('bash', [join(scripts, 'up.sh'), d, String(port)], { encoding: 'utf8' });
    stop = () => {
      spawnSync('bash', [join(scripts, 'down.sh'), d], { stdio: 'ignore' });
      rmSync(d, { recursive: true, force: true });
    };
    if (up.status === 0) {
      dir = d;
      break;
    }
    stop();
    const output = `${up.stderr}${up.stdout}`;
    if (attempt < 3 && /address already in use/.test(output)) continue;
    throw new Error(`up.sh failed: ${output.trim().split('\n').slice(-3).join(' / ')}`);
  }
  const adminKubeconfig = join(dir, 'admin.kubeconfig');
  const config = parse(readFileSync(adminKubeconfig, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
    users: { user: { token: string } }[];
  };
  const cluster = config.clusters[0]?.cluster;
  const token = config.users[0]?.user.token;
  if (!cluster || !token) throw new Error(`${adminKubeconfig}: no cluster or token`);
  const url = new URL(cluster.server);
  const ca = Buffer.from(cluster['certificate-authority-data'], 'base64');
  const base = (method: string, path: string, headers: Record<string, string>): RequestOptions => ({
    method,
    host: url.hostname,
    port: url.port,
    path,
    ca,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...headers },
  });

  const call = (method: string, path: string, body?: unknown, contentType = 'application/json') =>
    new Promise<unknown>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(base(method, path, payload ? { 'content-type': contentType } : {}), (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          if ((res.statusCode ?? 500) >= 400) reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
          else resolve(text ? JSON.parse(text) : undefined);
        });
      });
      req.once('error', reject);
      req.end(payload);
    });

  const watch = (path: string, onEvent: (type: string, object: KubeObject) => void) =>
    new Promise<() => void>((resolve, reject) => {
      const req = request(base('GET', path, {}), (res: IncomingMessage) => {
        if ((res.statusCode ?? 500) >= 400) {
          reject(new Error(`watch ${path}: ${res.statusCode}`));
          return;
        }
        let buffered = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buffered += d;
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            if (line.trim()) {
              const event = JSON.parse(line) as { type: string; object: KubeObject };
              onEvent(event.type, event.object);
            }
          }
        });
        res.on('error', () => undefined);
        resolve(() => req.destroy());
      });
      req.once('error', reject);
      req.end();
    });

  return { server: cluster.server, adminKubeconfig, call, watch, stop };
}
