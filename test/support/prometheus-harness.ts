import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, cpSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../../scripts/free-port.js';

// A real Prometheus (Debian's 2.42) serving history backfilled from an OpenMetrics file with
// promtool. Backfilled blocks are cached by the file's content hash, so a second run of the same
// data skips promtool; each Prometheus gets its own copy of the blocks (it locks and may compact
// its data directory).

export interface StartPrometheusOptions {
  openMetricsFile: string;
  /** How long to wait for Prometheus to become ready and serve the data. */
  readyTimeoutMs?: number;
  /** prometheus.yml to use instead of the empty one (e.g. to scrape a Pushgateway as well). */
  config?: string;
}

export interface PrometheusHandle {
  url: string;
  stop(): Promise<void>;
}

const CACHE_ROOT = join(tmpdir(), 'canary-prometheus-blocks');
const running = new Set<{ child: ChildProcess; dir: string }>();

process.once('exit', () => {
  for (const { child, dir } of running) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

export function findBinary(name: 'prometheus' | 'promtool'): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin'].filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new Error(
    `the real-Prometheus tests need "${name}" (Prometheus 2.x) on PATH and it was not found; install Debian's prometheus package (apt-get install prometheus)`,
  );
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex').slice(0, 24);
}

function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Backfills once per distinct file content; returns the directory holding the blocks. */
async function backfilledBlocks(openMetricsFile: string): Promise<string> {
  if (!existsSync(openMetricsFile)) throw new Error(`OpenMetrics file ${openMetricsFile} does not exist`);
  const promtool = findBinary('promtool');
  mkdirSync(CACHE_ROOT, { recursive: true });
  const dir = join(CACHE_ROOT, await hashFile(openMetricsFile));
  if (existsSync(join(dir, '.complete'))) return dir;
  const partial = mkdtempSync(`${dir}.partial-`);
  try {
    await run(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', openMetricsFile, partial]);
    writeFileSync(join(partial, '.complete'), '');
    try {
      renameSync(partial, dir);
    } catch (err) {
      // Another worker finished the same backfill first; theirs is as good as ours.
      if (!existsSync(join(dir, '.complete'))) throw err;
    }
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  return dir;
}

/** The first sample in the file: a series Prometheus must be able to answer before we are done. */
function firstSample(openMetricsFile: string): { name: string; at: number } {
  const fd = openSync(openMetricsFile, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    const line = buffer
      .subarray(0, read)
      .toString('utf8')
      .split('\n')
      .find((l) => l && !l.startsWith('#'));
    const match = line?.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})?\s+\S+\s+(\S+)$/);
    if (!match?.[1] || !match[2]) throw new Error(`${openMetricsFile}: expected a sample with a timestamp near the top, got ${JSON.stringify(line)}`);
    return { name: match[1], at: Number(match[2]) };
  } finally {
    closeSync(fd);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL after 5 s; forgets the process and removes its directory. */
async function stopLaunched(launched: { child: ChildProcess; exited: Promise<number | null> }, entry: { child: ChildProcess; dir: string }, dir: string): Promise<void> {
  if (launched.child.exitCode === null && launched.child.signalCode === null) {
    launched.child.kill('SIGTERM');
    const done = await Promise.race([launched.exited.then(() => true), sleep(5000).then(() => false)]);
    if (!done) {
      launched.child.kill('SIGKILL');
      await launched.exited;
    }
  }
  running.delete(entry);
  rmSync(dir, { recursive: true, force: true });
}

async function get(url: string): Promise<{ status: number; body: string } | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: response.status, body: await response.text() };
  } catch {
    return null;
  }
}

interface Launched {
  child: ChildProcess;
  exited: Promise<number | null>;
  log: () => string;
}

function launch(dataDir: string, configFile: string, port: number): Launched {
  const child = spawn(
    findBinary('prometheus'),
    [
      `--storage.tsdb.path=${dataDir}`,
      `--config.file=${configFile}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Backfilled history is old; without a long retention Prometheus deletes it on start.
      '--storage.tsdb.retention.time=100y',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    log = (log + d).slice(-8000);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  return { child, exited, log: () => log };
}

/** A private copy of the blocks and an empty config (nothing is scraped: all data is backfilled). */
function prepareDir(blocks: string, config = 'scrape_configs: []\n'): { dir: string; dataDir: string; configFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'canary-prometheus-'));
  const dataDir = join(dir, 'data');
  cpSync(blocks, dataDir, { recursive: true, filter: (src) => !src.endsWith('.complete') });
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, config);
  return { dir, dataDir, configFile };
}

/**
 * Backfills `openMetricsFile` with promtool and starts Prometheus on a free loopback port.
 * Resolves once /-/ready answers and the file's first series is queryable.
 */
export async function startPrometheus(options: StartPrometheusOptions): Promise<PrometheusHandle> {
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  findBinary('prometheus');
  const blocks = await backfilledBlocks(options.openMetricsFile);
  const probe = firstSample(options.openMetricsFile);

  for (let attempt = 1; ; attempt++) {
    const { dir, dataDir, configFile } = prepareDir(blocks, options.config);
    const port = await freePort();
    const launched = launch(dataDir, configFile, port);
    const entry = { child: launched.child, dir };
    running.add(entry);
    const url = `http://127.0.0.1:${port}`;
    const stop = () => stopLaunched(launched, entry, dir);

    let exitCode: number | null | undefined;
    void launched.exited.then((code) => (exitCode = code));
    const ready = async (): Promise<boolean> => {
      const query = encodeURIComponent(`count({__name__="${probe.name}"})`);
      while (Date.now() < deadline && exitCode === undefined) {
        const readyResponse = await get(`${url}/-/ready`);
        if (readyResponse?.status === 200) {
          const answer = await get(`${url}/api/v1/query?query=${query}&time=${probe.at}`);
          if (answer?.status === 200 && answer.body.includes('"result":[{')) return true;
        }
        await sleep(100);
      }
      return false;
    };
    if (await ready()) return { url, stop };

    const log = launched.log();
    await stop().catch(() => undefined);
    // Another process may take the free port between our probe and Prometheus's bind.
    if (attempt < 3 && /address already in use/i.test(log)) continue;
    throw new Error(
      exitCode !== undefined
        ? `prometheus exited (code ${String(exitCode)}) before it was ready: ${log.trim() || '(no output)'}`
        : `prometheus on ${url} did not serve ${probe.name} at ${probe.at} within the timeout: ${log.trim() || '(no output)'}`,
    );
  }
}

/**
 * Starts Prometheus with an empty data directory scraping `targets` (host:port, path /metrics)
 * every `scrapeInterval` — for what backfilling cannot make: stale markers after failed scrapes.
 * Resolves once /-/ready answers.
 */
export async function startScrapingPrometheus(options: { targets: string[]; scrapeInterval?: string; job?: string; readyTimeoutMs?: number }): Promise<PrometheusHandle> {
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  const interval = options.scrapeInterval ?? '1s';
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'canary-prometheus-scrape-'));
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    const configFile = join(dir, 'prometheus.yml');
    writeFileSync(
      configFile,
      [
        'global:',
        `  scrape_interval: ${interval}`,
        `  scrape_timeout: ${interval}`,
        'scrape_configs:',
        `  - job_name: ${options.job ?? 'target'}`,
        '    honor_labels: true',
        '    static_configs:',
        `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const launched = launch(dataDir, configFile, port);
    const entry = { child: launched.child, dir };
    running.add(entry);
    const url = `http://127.0.0.1:${port}`;
    let exitCode: number | null | undefined;
    void launched.exited.then((code) => (exitCode = code));
    const stop = () => stopLaunched(launched, entry, dir);
    while (Date.now() < deadline && exitCode === undefined) {
      if ((await get(`${url}/-/ready`))?.status === 200) return { url, stop };
      await sleep(100);
    }
    const log = launched.log();
    await stop().catch(() => undefined);
    if (attempt < 3 && /address already in use/i.test(log)) continue;
    throw new Error(`scraping prometheus on ${url} was not ready: ${log.trim() || '(no output)'}`);
  }
}
