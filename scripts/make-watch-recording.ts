import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRecording, writeRecording } from '../src/analysis/recording.js';
import { shippedPath } from '../src/paths.js';
import { startPrometheus } from '../test/support/prometheus-harness.js';
import { writeOpenMetrics } from './openmetrics.js';
import { BASE_ERROR_RATE, REGRESSED_ERROR_RATE, ROLLOUT_START, rolloutTimeline, SCENARIOS, TARGET, TrafficModel, type Scenario, type Timeline } from './traffic-model.js';

// Makes examples/recordings/post-promotion-regression.json the way make-recordings.ts makes the
// others: synthetic traffic backfilled into a real Prometheus, then `canary backtest --record`
// with examples/policies/post-promotion.yaml. The canary is healthy throughout; once it is
// promoted (stable takes all traffic on the new image) stable fails 12% of requests.
// Usage: npm run build && node dist/scripts/make-watch-recording.js   (needs Debian's prometheus)

const MINUTE = 60_000;
const POLICY = 'examples/policies/post-promotion.yaml';
const OUT = join('examples', 'recordings', 'post-promotion-regression.json');
const DESCRIPTION = "a healthy canary is promoted; then stable (now on the new image, all traffic) fails 12% of requests against ~0.5% before the rollout";

/** The default steps; after the last one the canary route is at 0% and stable serves everything. */
function watchTimeline(): Timeline & { promotedAt: Date } {
  // 35 minutes of history: the baseline is stable's 30 minutes before the rollout.
  const base = rolloutTimeline({ historyMinutes: 35 });
  const steps = base.phases.slice(0, -1);
  const promotedAt = steps.at(-1)?.to ?? base.start;
  return { historyStart: base.historyStart, start: base.start, end: new Date(promotedAt.getTime() + 20 * MINUTE), phases: steps, promotedAt };
}

class StableRegressionAfterPromotion extends TrafficModel {
  override readonly scenario: Scenario;
  constructor(promotedAt: Date, timeline: Timeline) {
    super('healthy', { timeline });
    this.scenario = {
      ...SCENARIOS.healthy,
      summary: DESCRIPTION,
      errorRate: (side, at) => (side === 'stable' && at.getTime() > promotedAt.getTime() ? REGRESSED_ERROR_RATE : BASE_ERROR_RATE),
    };
  }
}

function backtest(args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(cwd, 'bin', 'canary'), ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString('utf8')).slice(-20_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

async function main(): Promise<number> {
  const root = shippedPath();
  const work = mkdtempSync(join(tmpdir(), 'canary-watch-recording-'));
  const timeline = watchTimeline();
  const model = new StableRegressionAfterPromotion(timeline.promotedAt, timeline);
  const file = join(work, 'watch.om');
  await writeOpenMetrics(file, [model]);
  const prometheus = await startPrometheus({ openMetricsFile: file });
  try {
    const part = join(work, 'watch.json');
    const ran = await backtest(
      ['backtest', TARGET.stableDeployment, '-n', TARGET.namespace, '--policy', POLICY, '--prometheus', prometheus.url, '--from', ROLLOUT_START.toISOString().replace('.000Z', 'Z'), '--description', DESCRIPTION, '--record', part],
      root,
    );
    console.log(`post-promotion-regression (${POLICY}): exit ${ran.code ?? 'none'} (expected 7) ${ran.code === 7 ? 'ok' : 'MISMATCH'} -> ${OUT}`);
    if (ran.code !== 7) {
      console.log(ran.output.trim().split('\n').slice(-30).map((l) => `  | ${l}`).join('\n'));
      return 1;
    }
    const recording = loadRecording(part);
    // The port changes on every remake; leave it out so a remake only differs where the data does.
    const { prometheus: _port, ...meta } = recording.meta;
    writeRecording(join(root, OUT), { ...recording, createdAt: ROLLOUT_START.toISOString(), meta });
    return 0;
  } finally {
    await prometheus.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
