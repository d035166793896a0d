import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shippedPath } from '../src/paths.js';
import { startPrometheus } from '../test/support/prometheus-harness.js';
import { writeOpenMetrics } from './openmetrics.js';
import { loadRecording, writeRecording, type Recording } from '../src/analysis/recording.js';
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

/** The shipped policies a recording must answer for, so either can replay it. */
const POLICIES = ['policies/default.yaml', 'policies/threshold.yaml'] as const;

async function record(name: ScenarioName, root: string, work: string): Promise<Ran[]> {
  const model = new TrafficModel(name);
  const file = join(work, `${name}.om`);
  await writeOpenMetrics(file, [model]);
  const prometheus = await startPrometheus({ openMetricsFile: file });
  const out = join(root, 'examples', 'recordings', `${name}.json`);
  try {
    const runs: Ran[] = [];
    const parts: string[] = [];
    for (const [i, policy] of POLICIES.entries()) {
      const part = join(work, `${name}.${i}.json`);
      parts.push(part);
      runs.push(
        await runCli(
          [
            'backtest',
            TARGET.stableDeployment,
            '-n',
            TARGET.namespace,
            '--policy',
            policy,
            '--prometheus',
            prometheus.url,
            '--from',
            ROLLOUT_START.toISOString().replace('.000Z', 'Z'),
            '--description',
            SCENARIO_DESCRIPTIONS[name],
            '--record',
            part,
          ],
          root,
        ),
      );
    }
    writeRecording(out, mergeRecordings(parts.map((p) => loadRecording(p))));
    return runs;
  } finally {
    await prometheus.stop();
  }
}

/** One file answering every query any of the runs asked; the first run's meta, a fixed port-free URL. */
function mergeRecordings(recordings: Recording[]): Recording {
  const [first] = recordings;
  if (!first) throw new Error('no recordings to merge');
  const seen = new Set<string>();
  const entries = recordings.flatMap((r) => r.entries).filter((e) => {
    const key = `${e.time}\u0000${e.query}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  // The port changes on every remake; leave it out so a remake only differs where the data does.
  const { prometheus: _port, ...meta } = first.meta;
  return { ...first, createdAt: ROLLOUT_START.toISOString(), meta, entries };
}

const SCENARIO_DESCRIPTIONS: Record<ScenarioName, string> = {
  healthy: 'about 40 req/s; canary and stable both ~0.5% errors and P95 ~0.19 s',
  'error-regression': "the canary's error rate rises to 12% five minutes into the 25% step",
  'latency-regression': "the canary's P95 is ~2.4x stable's from the start",
  'no-traffic': 'the canary serves no requests',
};

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
      const runs = await record(name, root, work);
      const expected = EXPECTED_EXIT[name];
      runs.forEach((ran, i) => {
        const ok = ran.code === expected;
        console.log(`${name} (${POLICIES[i]}): exit ${ran.code ?? 'none'} (expected ${expected}) ${ok ? 'ok' : 'MISMATCH'} -> examples/recordings/${name}.json`);
        if (!ok) {
          failures++;
          console.log(ran.output.trim().split('\n').slice(-30).map((l) => `  | ${l}`).join('\n'));
        }
      });
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
