import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { REPO } from '../run-cli.js';
import { KubeApi } from './api.js';

// One real kube-apiserver (with its etcd) per test file, started with ../shared/kube/up.sh on free
// loopback ports and stopped with down.sh. Where the scripts or etcd are missing, the tier is
// skipped and says why (see `realKubeUnavailable`), so a missing prerequisite never passes silently.

export interface RealKube {
  readonly dir: string;
  readonly port: number;
  readonly server: string;
  /** PEM of the CA that signed the serving certificate. */
  readonly ca: string;
  /** PEM key and certificate of the API server, for a proxy that terminates TLS in its place. */
  readonly serving: { key: string; cert: string };
  readonly kubeconfigs: { admin: string; deployer: string; nobody: string };
  /** As the admin (group system:masters). */
  readonly admin: KubeApi;
  readonly deployerToken: string;
  /** down.sh: stops etcd and kube-apiserver; the data in `dir` is kept. */
  stopServer(): Promise<void>;
  /** up.sh on the same dir and port, after stopServer(). */
  startServer(): Promise<void>;
  /** Stops everything and removes the directory. */
  stop(): Promise<void>;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** ../shared/kube relative to the repo, also from a worktree one level further down (/work/wt/NAME). */
export function kubeScriptsDir(): string | undefined {
  const fromEnv = process.env['CANARY_REAL_KUBE_DIR'];
  if (fromEnv) return existsSync(join(fromEnv, 'up.sh')) ? fromEnv : undefined;
  let dir = resolve(REPO);
  for (let i = 0; i < 4; i += 1) {
    const candidate = join(dirname(dir), 'shared', 'kube');
    if (existsSync(join(candidate, 'up.sh')) && existsSync(join(candidate, 'down.sh'))) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Why the real API server tier cannot run here, or undefined when it can. */
export function realKubeUnavailable(): string | undefined {
  const scripts = kubeScriptsDir();
  if (!scripts) return 'no ../shared/kube/up.sh next to the repository (set CANARY_REAL_KUBE_DIR to its folder)';
  const etcd = process.env['ETCD'] ?? onPath('etcd');
  if (!etcd || !executable(etcd)) return 'etcd is not installed (apt-get install etcd-server; .ci/run does it)';
  for (const tool of ['openssl', 'curl', 'xz']) {
    if (!onPath(tool)) return `${tool} is not installed (.ci/run installs it)`;
  }
  return undefined;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = net.createServer();
    server.once('error', () => resolvePort(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)));
  });
}

/** A port P with P, P+10000 and P+10001 free (up.sh puts etcd on the latter two). */
async function freePortTriple(): Promise<number> {
  for (let i = 0; i < 200; i += 1) {
    const port = 20_000 + Math.floor(Math.random() * 25_000);
    if ((await portFree(port)) && (await portFree(port + 10_000)) && (await portFree(port + 10_001))) return port;
  }
  throw new Error('no free loopback port triple for kube-apiserver and etcd');
}

// Without the watch cache a watch is served from etcd, whose history survives a restart of the API
// server: the tests' watches resume across an outage instead of being told their version is gone.
const EXTRA_ARGS = '--watch-cache=false';

function run(script: string, args: string[]): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const env = { ...process.env, KUBE_APISERVER_EXTRA_ARGS: EXTRA_ARGS };
    execFile(script, args, { timeout: 180_000, maxBuffer: 4 * 1024 * 1024, env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolveRun(stdout);
    });
  });
}

function tokenOf(kubeconfig: string): string {
  const match = /token: (\S+)/.exec(readFileSync(kubeconfig, 'utf8'));
  if (!match?.[1]) throw new Error(`no token in ${kubeconfig}`);
  return match[1];
}

export async function startRealKube(): Promise<RealKube> {
  const scripts = kubeScriptsDir();
  if (!scripts) throw new Error(realKubeUnavailable());
  const up = join(scripts, 'up.sh');
  const down = join(scripts, 'down.sh');
  let lastError: unknown;
  // Another process may take the port between our probe and up.sh binding it: try a few.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const dir = await mkdtemp(join(tmpdir(), 'canary-real-kube-'));
    const port = await freePortTriple();
    try {
      await run(up, [dir, String(port)]);
    } catch (err) {
      lastError = err;
      await run(down, [dir]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      continue;
    }
    const kubeconfigs = { admin: join(dir, 'admin.kubeconfig'), deployer: join(dir, 'deployer.kubeconfig'), nobody: join(dir, 'nobody.kubeconfig') };
    const ca = readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8');
    const serving = { key: readFileSync(join(dir, 'pki', 'apiserver.key'), 'utf8'), cert: readFileSync(join(dir, 'pki', 'apiserver.crt'), 'utf8') };
    let running = true;
    const cluster: RealKube = {
      dir,
      port,
      server: `https://127.0.0.1:${port}`,
      ca,
      serving,
      kubeconfigs,
      admin: new KubeApi(port, ca, tokenOf(kubeconfigs.admin)),
      deployerToken: tokenOf(kubeconfigs.deployer),
      stopServer: async () => {
        await run(down, [dir]);
        running = false;
      },
      startServer: async () => {
        await run(up, [dir, String(port)]);
        running = true;
      },
      stop: async () => {
        if (running) await run(down, [dir]).catch(() => undefined);
        running = false;
        await rm(dir, { recursive: true, force: true });
      },
    };
    return cluster;
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
