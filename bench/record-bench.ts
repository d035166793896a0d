import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ReplaySource } from '../src/analysis/recording.js';
import type { CheckRecord } from '../src/analysis/types.js';
import { runSimulation } from '../src/cli/simulation.js';
import { MAX_RECORD_BYTES, serializeRecord } from '../src/k8s/configmap-state-store.js';
import { loadPolicy } from '../src/policy/loader.js';
import { shippedPath } from '../src/paths.js';
import { VirtualClock } from '../src/rollout/clock.js';
import type { RolloutEvent } from '../src/rollout/events.js';
import { countVerdict, emptyCounts, keepCheck, type RolloutRecord } from '../src/rollout/record.js';
import { createErrorRateJudge } from '../src/analysis/sequential/binomial-sequential.js';
import { standardNormalCdf } from '../src/analysis/sequential/evidence.js';
import { createLatencyJudge } from '../src/analysis/sequential/latency-sequential.js';

// The rollout record after a long rollout: its size in the ConfigMap and the time one save takes
// to serialise it. Checks are the shipped default policy's own, taken from replaying the healthy
// recording, repeated (with their indexes) up to CHECKS; the record keeps what the engine keeps.

const CHECKS = Number(process.env['BENCH_CHECKS'] ?? 2000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 30);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

async function main(): Promise<void> {
  const policy = loadPolicy();
  const replay = ReplaySource.fromFile(join(shippedPath('examples', 'recordings'), 'healthy.json'));
  const checks: CheckRecord[] = [];
  const { cluster } = await runSimulation({
    policy,
    target: replay.meta.target,
    namespace: replay.meta.namespace,
    image: 'shop/checkout:2',
    startedBy: 'bench',
    metrics: replay,
    clock: new VirtualClock(replay.startedAt.getTime()),
    reporter: { emit: (e: RolloutEvent) => void (e.type === 'check' && checks.push(e.check)) },
    narrateWrites: false,
  });
  const base = (await cluster.load())?.record;
  if (!base || checks.length === 0) throw new Error('the healthy replay produced no record');

  // The engine's own bookkeeping: every check appended, the oldest let go beyond historyLimit.
  const record: RolloutRecord = { ...structuredClone(base), checks: [], phase: 'progressing' };
  const tallies = { ...emptyCounts(), failures: 0, inconclusiveRun: 0, byStep: [emptyCounts()] };
  const all: CheckRecord[] = [];
  for (let i = 0; i < CHECKS; i += 1) {
    const check = { ...structuredClone(checks[i % checks.length] as CheckRecord), index: i + 1, stepIndex: 0 };
    keepCheck(record, check, policy.analysis.historyLimit);
    all.push(check);
    countVerdict(tallies, check.verdict);
    countVerdict(tallies.byStep[0]!, check.verdict);
  }
  record.tallies = tallies;

  const times: number[] = [];
  let text = '';
  for (let i = 0; i < RUNS + 5; i += 1) {
    const t0 = performance.now();
    text = serializeRecord(record);
    if (i >= 5) times.push(performance.now() - t0);
  }
  const bytes = Buffer.byteLength(text);
  const unbounded = Buffer.byteLength(JSON.stringify({ ...record, checks: all }));

  console.log(`canary record benchmark: ${CHECKS} checks of the default policy (historyLimit ${policy.analysis.historyLimit}), ${RUNS} saves, median (node ${process.version})`);
  console.log('');
  console.log(`record size after ${CHECKS} checks:   ${bytes.toLocaleString('en')} bytes (${((bytes / MAX_RECORD_BYTES) * 100).toFixed(1)}% of the ${MAX_RECORD_BYTES.toLocaleString('en')}-byte budget; ConfigMap limit 1 MiB)`);
  console.log(`serialise time per save:           ${median(times).toFixed(3)} ms`);
  console.log(`every check kept in full would be: ${unbounded.toLocaleString('en')} bytes (${(unbounded / CHECKS).toFixed(0)} bytes per check)`);
  console.log('');
  recordSizes(base, checks, policy.analysis.historyLimit);
}

/**
 * The whole record (checks kept as the engine keeps them, and both sequential judges' state as
 * record.judge) after 100, 1,000 and 10,000 checks: flat once the judges' spans reach their bound.
 * The kept checks come from every step of the healthy replay, so the newest check's queries are
 * not always the older ones' (the first check of the replay asks more): each distinct text is stored once.
 */
function recordSizes(base: RolloutRecord, checks: CheckRecord[], historyLimit: number): void {
  const errors = createErrorRateJudge({ margin: 0.03, cap: 0.05 });
  const latency = createLatencyJudge({ ratio: 1.5, limit: 2 });
  const edges = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity];
  const buckets = (n: number) => edges.map((le) => ({ le, count: Number.isFinite(le) ? n * standardNormalCdf((Math.log(le) - Math.log(0.12)) / 0.5) : n }));
  const record: RolloutRecord = { ...structuredClone(base), checks: [], phase: 'progressing' };
  console.log('record size (checks kept in full + judge state), a healthy window per check at one step:');
  for (let i = 1; i <= 10_000; i++) {
    const n = 300 + (i % 7);
    errors.observe({ step: 2, canary: { requests: n, errors: 3 + (i % 3) }, stable: { requests: n, errors: 3 + ((i + 1) % 3) } });
    latency.observe({ step: 2, canary: { buckets: buckets(n) }, stable: { buckets: buckets(n) } });
    keepCheck(record, { ...structuredClone(checks[i % checks.length] as CheckRecord), index: i, stepIndex: 2 }, historyLimit);
    if (i === 100 || i === 1000 || i === 10_000) {
      record.judge = { 'error-rate': errors.snapshot(), 'p95-latency': latency.snapshot() };
      const judgeBytes = Buffer.byteLength(JSON.stringify(record.judge));
      const bytes = Buffer.byteLength(serializeRecord(record));
      console.log(`  after ${i.toLocaleString('en').padStart(6)} checks: ${bytes.toLocaleString('en').padStart(9)} bytes (judge state ${judgeBytes.toLocaleString('en')} bytes)`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
