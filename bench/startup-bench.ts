// How long `canary` takes to start, as users run it (bin/canary → the checked-in bundle): CPU and
// wall time of each command, medians of N runs, as ratios to `node -e 0`. `status` and
// `rollback` run against a real kube-apiserver (../shared/kube); for `rollback` the figure that
// matters is invocation → weight 0 seen in the API, taken by this process from a watch on the
// canary Ingress. Targets (issue 10): --help and validate ≤ 3× the CPU of `node -e 0`; status
// ≤ 400 ms wall; rollback → weight 0 ≤ 500 ms.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { shippedPath, packageRoot } from '../src/paths.js';
import { armCanary, CANARY, NS, seed, TARGET, WEIGHT } from './checkout-world.js';
import { startRealKube, whyNoKube, type RealKube } from './real-kube.js';

const RUNS = Number(process.env['BENCH_STARTUP_RUNS'] ?? 10);

// The child reports its own CPU time (user + system, all threads, from process start) as it
// exits; the same preload runs for `node -e 0`, so the ratios compare like with like.
const CPU_PRELOAD =
  'data:text/javascript,' +
  encodeURIComponent(
    "import{writeFileSync}from'node:fs';process.on('exit',()=>{const u=process.cpuUsage();writeFileSync(process.env.CANARY_BENCH_CPU_OUT,String((u.user+u.system)/1000))});",
  );

interface Run {
  cpuMs: number;
  wallMs: number;
  code: number | null;
  stdout: string;
  stderr: string;
  /** Invocation → the awaited event (rollback: weight 0 in the API). */
  eventMs?: number;
}

const work = mkdtempSync(join(tmpdir(), 'canary-bench-startup-'));
const cpuFile = join(work, 'cpu');

function runOnce(args: string[], env: NodeJS.ProcessEnv = {}, onStart?: (t0: number) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', CPU_PRELOAD, ...args], {
      cwd: packageRoot(),
      env: { ...process.env, NO_COLOR: '1', GITHUB_ACTIONS: undefined, ...env, CANARY_BENCH_CPU_OUT: cpuFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onStart?.(t0);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => {
      const wallMs = performance.now() - t0;
      resolve({ cpuMs: Number(readFileSync(cpuFile, 'utf8')), wallMs, code, stdout, stderr });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

interface Row {
  label: string;
  cpuMs: number;
  wallMs: number;
  eventMs?: number;
  codes: string;
}

/** Runs a command RUNS times after one warm-up (the page cache, not our code, is warmed). */
async function bench(label: string, run: () => Promise<Run>, expectCodes: number[]): Promise<Row> {
  const first = await run();
  if (!expectCodes.includes(first.code ?? -1)) {
    throw new Error(`${label}: exited ${first.code}, expected ${expectCodes.join(' or ')}\n${first.stderr || first.stdout}`.trim());
  }
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i += 1) runs.push(await run());
  const events = runs.map((r) => r.eventMs).filter((x): x is number => x !== undefined);
  return {
    label,
    cpuMs: median(runs.map((r) => r.cpuMs)),
    wallMs: median(runs.map((r) => r.wallMs)),
    ...(events.length === runs.length && { eventMs: median(events) }),
    codes: [...new Set(runs.map((r) => r.code))].join(','),
  };
}

/** One `canary rollback`, timed from spawn to the watch event that shows weight 0. */
async function rollbackOnce(kube: RealKube, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const rv = await armCanary(kube);
  let t0 = 0;
  let zeroAt: number | undefined;
  const stopWatch = await kube.watch(
    `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses?watch=1&fieldSelector=metadata.name%3D${CANARY}&resourceVersion=${rv}`,
    (_type, obj) => {
      if (zeroAt === undefined && obj.metadata?.annotations?.[WEIGHT] === '0') zeroAt = performance.now();
    },
  );
  try {
    const run = await runOnce(args, env, (start) => (t0 = start));
    // The event can trail the process's exit by a moment; wait for it (bounded), never guess.
    for (let i = 0; zeroAt === undefined && i < 200; i += 1) await new Promise((r) => setTimeout(r, 10));
    return { ...run, ...(zeroAt !== undefined && { eventMs: zeroAt - t0 }) };
  } finally {
    stopWatch();
  }
}

const fmt = (ms: number) => ms.toFixed(0).padStart(7);
const ratio = (x: number, base: number) => `${(x / base).toFixed(1)}×`.padStart(7);

async function main(): Promise<void> {
  const bin = shippedPath('bin', 'canary');
  console.log('');
  console.log(`canary start-up benchmark: median of ${RUNS} runs after 1 warm-up, bin/canary → bundle/ (node ${process.version})`);
  // Wall times on a shared machine stretch with its load; CPU times much less so.
  const load = () => `load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} CPUs`;
  console.log(`(${load()} at the start)`);
  console.log('');
  const rows: Row[] = [];
  rows.push(await bench('node -e 0', () => runOnce(['-e', '0']), [0]));
  rows.push(await bench('canary --help', () => runOnce([bin, '--help']), [0]));
  rows.push(await bench('canary validate policies/default.yaml', () => runOnce([bin, 'validate', 'policies/default.yaml']), [0]));
  const demo = ['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run', '--replay', 'examples/recordings/error-regression.json'];
  rows.push(await bench('canary deploy --dry-run --replay (npm run demo)', () => runOnce([bin, ...demo]), [3]));

  const noKube = whyNoKube(packageRoot());
  let kube: RealKube | undefined;
  let kubeSkip = noKube;
  if (!noKube) {
    try {
      const t = performance.now();
      kube = await startRealKube(packageRoot());
      console.log(`(real kube-apiserver started in ${((performance.now() - t) / 1000).toFixed(0)} s at ${kube.server})`);
      await seed(kube);
    } catch (err) {
      kubeSkip = `the real API server did not start: ${err instanceof Error ? err.message : String(err)}`;
      kube?.stop();
      kube = undefined;
    }
  }
  try {
    if (kube) {
      const k = kube;
      const env = { KUBECONFIG: k.adminKubeconfig };
      const rollback = [bin, 'rollback', TARGET, '-n', NS, '--reason', 'bench', '--no-incident'];
      rows.push(await bench('canary rollback (real API server)', () => rollbackOnce(k, rollback, env), [0]));
      rows.push(await bench('canary status (real API server)', () => runOnce([bin, 'status', TARGET, '-n', NS], env), [0, 3, 4]));
    }
  } finally {
    kube?.stop();
    rmSync(work, { recursive: true, force: true });
  }

  const base = rows[0]!;
  console.log(`${'command'.padEnd(50)}${'CPU ms'.padStart(7)}${'× node'.padStart(7)}${'wall ms'.padStart(8)}${'× node'.padStart(7)}  → weight 0 in the API`);
  for (const r of rows) {
    const event = r.eventMs === undefined ? '' : `${r.eventMs.toFixed(0)} ms`;
    console.log(`${r.label.padEnd(50)}${fmt(r.cpuMs)}${ratio(r.cpuMs, base.cpuMs)} ${fmt(r.wallMs)}${ratio(r.wallMs, base.wallMs)}  ${event}`);
  }
  if (kubeSkip) console.log(`canary status, canary rollback: skipped: ${kubeSkip}`);
  console.log(`(${load()} at the end)`);
  console.log('');
  const by = (label: string) => rows.find((r) => r.label.startsWith(label));
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : 'MISSED');
  const help = by('canary --help');
  const validate = by('canary validate');
  const status = by('canary status');
  const rollback = by('canary rollback');
  console.log('Targets (issue 10):');
  console.log(`  --help CPU ≤ 3× node -e 0: ${verdict(help && help.cpuMs <= 3 * base.cpuMs)}`);
  console.log(`  validate CPU ≤ 3× node -e 0: ${verdict(validate && validate.cpuMs <= 3 * base.cpuMs)}`);
  console.log(`  status ≤ 400 ms wall: ${verdict(status && status.wallMs <= 400)}`);
  console.log(`  rollback invocation → weight 0 ≤ 500 ms: ${verdict(rollback?.eventMs !== undefined ? rollback.eventMs <= 500 : undefined)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
