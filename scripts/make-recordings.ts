import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shippedPath } from '../src/paths.js';
import { startPrometheus } from '../test/support/prometheus-harness.js';
import { writeOpenMetrics } from './openmetrics.js';
import { isScenarioName, ROLLOUT_START, SCENARIO_NAMES, TARGET, TrafficModel, type ScenarioName } from './traffic-model.js';

// Remakes examples/recordings/*.json with the tool itself: for each scenario, synthetic traffic
// is backfilled into a real Prometheus and `canary backtest --record` runs the default policy
// against it. Usage: npm run recordings [-- SCENARIO...]   (needs Debian's prometheus package)

const EXPECTED_EXIT: Record<ScenarioName, number> = {
  healthy: 0,
  'error-regression': 3,
  'latency-regression': 3,
  'no-traffic': 3,
};

const CHILD_TIMEOUT_MS = 5 * 60_000;

interface Ran {
  code: number | null;
  output: string;
}

function runCli(args: string[], cwd: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(cwd, 'bin', 'canary'), ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', CI: process.env.CI ?? '' },
    });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString('utf8')).slice(-20_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${output}\ncannot start the CLI: ${err.message}` });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function record(name: ScenarioName, root: string, work: string): Promise<Ran> {
  const model = new TrafficModel(name);
  const file = join(work, `${name}.om`);
  await writeOpenMetrics(file, [model]);
  const prometheus = await startPrometheus({ openMetricsFile: file });
  try {
    return await runCli(
      [
        'backtest',
        TARGET.stableDeployment,
        '-n',
        TARGET.namespace,
        '--policy',
        'policies/default.yaml',
        '--prometheus',
        prometheus.url,
        '--from',
        ROLLOUT_START.toISOString().replace('.000Z', 'Z'),
        '--record',
        join('examples', 'recordings', `${name}.json`),
      ],
      root,
    );
  } finally {
    await prometheus.stop();
  }
}

async function main(argv: string[]): Promise<number> {
  const unknown = argv.filter((a) => !isScenarioName(a));
  if (unknown.length) {
    console.error(`unknown scenario ${unknown.join(', ')}; expected any of ${SCENARIO_NAMES.join(', ')}`);
    return 2;
  }
  const names = argv.length ? argv.filter(isScenarioName) : [...SCENARIO_NAMES];
  const root = shippedPath();
  mkdirSync(join(root, 'examples', 'recordings'), { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'canary-recordings-'));
  let failures = 0;
  try {
    for (const name of names) {
      const ran = await record(name, root, work);
      const expected = EXPECTED_EXIT[name];
      const ok = ran.code === expected;
      console.log(`${name}: exit ${ran.code ?? 'none'} (expected ${expected}) ${ok ? 'ok' : 'MISMATCH'} -> examples/recordings/${name}.json`);
      if (!ok) {
        failures++;
        console.log(ran.output.trim().split('\n').slice(-30).map((l) => `  | ${l}`).join('\n'));
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return failures ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
