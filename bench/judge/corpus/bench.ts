// npm run bench:judge — the judges on an independent corpus of ingress-nginx rollouts, served by a
// real Prometheus and judged by `canary backtest`, once per shipped policy.
//
//   generate (seeded) → OpenMetrics → promtool backfill → prometheus → canary backtest × N
//
// Options: --quick (a smaller corpus, for iterating on the judges), --seed N, --concurrency N
// (backtests in flight; default 4), --policy FILE (repeatable; default: the shipped
// policies/default.yaml and policies/threshold.yaml), --kind TEXT (only kinds containing TEXT),
// --fresh (regenerate instead of reusing the cached blocks), --json FILE (every backtest's
// ending, for digging in), --keep (leave the temp dir with Prometheus's data).

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicy } from '../../../src/policy/loader.js';
import { shippedPath } from '../../../src/paths.js';
import { pool, runBacktest } from './backtest-runner.js';
import { prepareCorpus } from './prepare.js';
import { removeDir, servePrometheus } from './prometheus.js';
import { report, score, type Scored } from './score.js';
import { FULL_SIZE, QUICK_SIZE, ROLLOUT_START_MS, buildCorpus } from './spec.js';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const values = (name: string) => argv.flatMap((a, i) => (a === `--${name}` && argv[i + 1] !== undefined ? [argv[i + 1] as string] : []));
const number = (name: string, fallback: number) => {
  const v = Number(values(name)[0]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
};

const seed = number('seed', 20260302);
const concurrency = number('concurrency', 4);
const quick = flag('quick');
const policies = values('policy').length ? values('policy') : [shippedPath('policies/default.yaml'), shippedPath('policies/threshold.yaml')];
const kindFilter = values('kind');
const log = (line: string) => process.stderr.write(`${line}\n`);

const started = Date.now();
let specs = buildCorpus(seed, quick ? QUICK_SIZE : FULL_SIZE);
const workDir = mkdtempSync(join(tmpdir(), 'canary-judge-bench-'));
log(`judge benchmark: ${specs.length} rollouts (${quick ? 'quick' : 'full'} corpus, seed ${seed}), work dir ${workDir}`);
const prepared = await prepareCorpus(specs, workDir, { fresh: flag('fresh'), log });
const prepSeconds = (Date.now() - started) / 1000;
log(`  history ready in ${prepSeconds.toFixed(0)} s (${prepared.cached ? 'cached blocks' : `${prepared.samples} samples backfilled`}, ${prepared.blocks} blocks)`);
if (kindFilter.length) specs = specs.filter((s) => kindFilter.some((k) => s.kind.includes(k)));

const probe = specs.find((s) => s.hasData)?.id ?? 'bench-001';
const prometheus = await servePrometheus(workDir, prepared.dataDir, `nginx_ingress_controller_requests{namespace="${probe}"}`, ROLLOUT_START_MS);
const out: string[] = [];
const dump: unknown[] = [];
let failed = 0;
try {
  for (const policyPath of policies) {
    const policy = loadPolicy(policyPath);
    const t0 = Date.now();
    const runs = await pool(
      specs,
      concurrency,
      (spec) =>
        runBacktest({ target: spec.backtest.target, namespace: spec.backtest.namespace, fromMs: spec.backtest.fromMs, policyPath, prometheusUrl: prometheus.url }),
      (done) => {
        if (done % 25 === 0 || done === specs.length) log(`  ${policy.name}: ${done}/${specs.length} backtests`);
      },
    );
    const scored: Scored[] = specs.map((spec, i) => score(spec, runs[i] as NonNullable<(typeof runs)[number]>, policy));
    const { lines, targets } = report(`policy ${policy.name} (${policyPath})`, scored, (Date.now() - t0) / 1000);
    failed += targets.filter((t) => !t.pass).length;
    out.push(...lines, '');
    process.stdout.write(`${lines.join('\n')}\n\n`);
    for (const s of scored) {
      dump.push({
        policy: policy.name,
        id: s.spec.id,
        kind: s.spec.kind,
        band: s.spec.band,
        rps: Number(s.spec.rps.toFixed(2)),
        onset: s.spec.onset?.label ?? null,
        expected: s.spec.expected,
        code: s.run.code,
        ending: s.ending,
        correct: s.correct,
        checksAfterOnset: s.checksAfterOnset,
        checks: s.run.record?.checks.length ?? null,
        reason: s.run.outcome?.reason ?? s.run.stderr.trim(),
      });
    }
  }
} finally {
  await prometheus.stop();
  if (!flag('keep')) removeDir(workDir);
}
const jsonFile = values('json')[0];
if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(dump, null, 2)}\n`);
process.stdout.write(
  `corpus: ${specs.length} rollouts, seed ${seed}${quick ? ' (quick)' : ''}; history ${prepSeconds.toFixed(0)} s, total ${((Date.now() - started) / 1000).toFixed(0)} s with ${concurrency} backtests in flight\n`,
);
process.stdout.write(failed ? `${failed} target line(s) FAIL\n` : 'all targets PASS\n');
