import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../../scripts/free-port.js';

// A real Prometheus Pushgateway (Debian's prometheus-pushgateway, 1.5) on a free loopback port,
// in memory only (no persistence file), for the metrics tests.

export interface PushgatewayHandle {
  url: string;
  /** host:port, for a Prometheus scrape config. */
  address: string;
  stop(): Promise<void>;
}

const NAMES = ['prometheus-pushgateway', 'pushgateway'];

/** The Pushgateway binary, or undefined when neither Debian's nor upstream's name is on PATH. */
export function findPushgateway(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin'].filter(Boolean);
  for (const name of NAMES) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here; keep looking
      }
    }
  }
  return undefined;
}

export function pushgatewayUnavailable(): string | undefined {
  return findPushgateway() ? undefined : 'no prometheus-pushgateway on PATH (apt-get install prometheus-pushgateway)';
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startPushgateway(readyTimeoutMs = 60_000): Promise<PushgatewayHandle> {
  const binary = findPushgateway();
  if (!binary) throw new Error(pushgatewayUnavailable());
  const deadline = Date.now() + readyTimeoutMs;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'canary-pushgateway-'));
    // Debian's build persists to /var/lib/prometheus/pushgateway.data by default: shared between
    // runs and test files. An empty --persistence.file keeps each Pushgateway in memory, its own.
    const child = spawn(binary, [`--web.listen-address=127.0.0.1:${port}`, '--persistence.file=', '--log.level=warn'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(child);
    let log = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-4000)));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const url = `http://127.0.0.1:${port}`;
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      running.delete(child);
      rmSync(dir, { recursive: true, force: true });
    };
    while (Date.now() < deadline && child.exitCode === null) {
      const ok = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) })
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ok) return { url, address: `127.0.0.1:${port}`, stop };
      await new Promise((r) => setTimeout(r, 100));
    }
    await stop();
    if (attempt < 3 && /address already in use/i.test(log)) continue;
    throw new Error(`the Pushgateway on ${url} did not become ready: ${log.trim() || '(no output)'}`);
  }
}

/** The Pushgateway's /api/v1/metrics answer. */
export async function pushedGroups(url: string): Promise<{ labels: Record<string, string>; [family: string]: unknown }[]> {
  const res = await fetch(`${url}/api/v1/metrics`);
  const body = (await res.json()) as { data: { labels: Record<string, string> }[] };
  return body.data;
}

/** One pushed sample's value, or undefined. */
export function pushedValue(groups: Awaited<ReturnType<typeof pushedGroups>>, group: Record<string, string>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const g of groups) {
    if (Object.entries(group).some(([k, v]) => g.labels[k] !== v)) continue;
    const family = g[name] as { metrics?: { labels: Record<string, string>; value: string }[] } | undefined;
    const m = family?.metrics?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (m) return Number(m.value);
  }
  return undefined;
}
