import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { freePort } from '../../../scripts/free-port.js';

// The benchmark's Prometheus: Debian's prometheus and promtool, history backfilled from
// OpenMetrics files (one promtool run per file; their blocks overlap in time, which Prometheus
// 2.39+ merges at query time), served on a free loopback port with nothing to scrape.

export function findBinary(name: 'prometheus' | 'promtool'): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin'].filter(Boolean);
  for (const dir of dirs) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  throw new Error(`the judge benchmark needs "${name}" (Prometheus 2.x) on PATH; install Debian's prometheus package (apt-get install prometheus)`);
}

/** Backfills one OpenMetrics file into `dataDir` (blocks are added beside those already there). */
export function backfill(openMetricsFile: string, dataDir: string): Promise<void> {
  const promtool = findBinary('promtool');
  mkdirSync(dataDir, { recursive: true });
  return new Promise((resolve, reject) => {
    execFile(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', openMetricsFile, dataDir], { maxBuffer: 64 * 1024 * 1024 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`promtool could not backfill ${openMetricsFile}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

export function blockCount(dataDir: string): number {
  try {
    return readdirSync(dataDir).filter((d) => /^[0-9A-Z]{26}$/.test(d)).length;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ServedPrometheus {
  url: string;
  stop(): Promise<void>;
}

/**
 * Serves `dataDir` and resolves once `probeQuery` at `probeAtMs` returns a series: the blocks are
 * loaded and answer. Prometheus may compact the overlapping blocks in the background meanwhile.
 */
export async function servePrometheus(workDir: string, dataDir: string, probeQuery: string, probeAtMs: number): Promise<ServedPrometheus> {
  const config = join(workDir, 'prometheus.yml');
  writeFileSync(config, 'scrape_configs: []\n');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      findBinary('prometheus'),
      [
        `--storage.tsdb.path=${dataDir}`,
        `--config.file=${config}`,
        `--web.listen-address=127.0.0.1:${port}`,
        // Backfilled history is old; without a long retention Prometheus deletes it on start.
        '--storage.tsdb.retention.time=100y',
        '--query.max-concurrency=8',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-8000)));
    let exited = false;
    const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exit.then(() => (exited = true));
    const url = `http://127.0.0.1:${port}`;
    const stop = async () => {
      if (!exited) {
        child.kill('SIGTERM');
        await Promise.race([exit, sleep(10_000)]);
        if (!exited) child.kill('SIGKILL');
      }
    };
    const deadline = Date.now() + 120_000;
    while (!exited && Date.now() < deadline) {
      try {
        const q = encodeURIComponent(probeQuery);
        const res = await fetch(`${url}/api/v1/query?query=${q}&time=${probeAtMs / 1000}`, { signal: AbortSignal.timeout(5000) });
        if (res.ok && (await res.text()).includes('"result":[{')) return { url, stop };
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    await stop();
    if (attempt < 3 && /address already in use/i.test(log)) continue;
    throw new Error(`prometheus did not serve the backfilled corpus: ${log.trim() || '(no output)'}`);
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
