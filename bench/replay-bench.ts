import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ReplaySource } from '../src/analysis/recording.js';
import { runSimulation } from '../src/cli/simulation.js';
import { loadPolicy } from '../src/policy/loader.js';
import { shippedPath } from '../src/paths.js';
import { VirtualClock } from '../src/rollout/clock.js';
import { silentReporter } from '../src/rollout/events.js';

// How long the whole engine takes to replay each shipped recording: policy already loaded,
// recording already parsed (those are one-off costs), everything else per run.

const RUNS = Number(process.env['BENCH_RUNS'] ?? 30);
const WARMUP = 5;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

async function main(): Promise<void> {
  const dir = shippedPath('examples', 'recordings');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  const policy = loadPolicy();
  console.log(`canary replay benchmark: ${RUNS} runs each after ${WARMUP} warm-up runs, median wall time (node ${process.version})`);
  console.log('');
  console.log(`${'recording'.padEnd(26)}${'outcome'.padEnd(14)}${'checks'.padStart(7)}${'median ms'.padStart(12)}${'ms/check'.padStart(11)}`);
  for (const file of files) {
    const recording = ReplaySource.fromFile(join(dir, file)).recording;
    const times: number[] = [];
    let checks = 0;
    let result = '';
    for (let i = 0; i < RUNS + WARMUP; i += 1) {
      const replay = new ReplaySource(recording, file);
      const t0 = performance.now();
      const { outcome, cluster } = await runSimulation({
        policy,
        target: replay.meta.target,
        namespace: replay.meta.namespace,
        image: 'shop/checkout:2',
        startedBy: 'bench',
        metrics: replay,
        clock: new VirtualClock(replay.startedAt.getTime()),
        reporter: silentReporter,
        narrateWrites: false,
      });
      const elapsed = performance.now() - t0;
      if (i >= WARMUP) times.push(elapsed);
      checks = (await cluster.load())?.record.tallies?.run ?? 0;
      result = `${outcome.result} (${outcome.exitCode})`;
    }
    const m = median(times);
    console.log(`${file.padEnd(26)}${result.padEnd(14)}${String(checks).padStart(7)}${m.toFixed(2).padStart(12)}${(m / Math.max(1, checks)).toFixed(3).padStart(11)}`);
  }
  console.log('');
  console.log('Aim (issue 2): a full default rollout (about 40 checks) replays in under 50 ms.');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
