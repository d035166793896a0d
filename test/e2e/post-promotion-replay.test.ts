import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Outcome, RolloutRecord } from '../../src/rollout/record.js';
import { REPO, runCli } from '../support/run-cli.js';

// The post-promotion watch in a dry-run on a shipped recording of real Prometheus answers
// (scripts/make-watch-recording.ts): a healthy canary is promoted, then stable, now on the new
// image and carrying all traffic, fails 12% of requests against ~0.5% before the rollout.

const ARGS = [
  'deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run',
  '--replay', join(REPO, 'examples', 'recordings', 'post-promotion-regression.json'),
  '-p', join(REPO, 'examples', 'policies', 'post-promotion.yaml'),
];

describe('post-promotion-regression.json replays to a rollback after promotion', () => {
  it('measures the baseline at the start, promotes, watches, and sets stable back on two breaches in a row: exit 7', async () => {
    const run = await runCli(ARGS);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(7);
    expect(run.stdout).toContain('post-promotion baseline: stable over the 30m before the rollout: error rate 0.5% (360 of 71,993 requests) · P95 191ms');
    expect(run.stdout).toContain('dry-run: would set Deployment shop/checkout image to shop/checkout:2 and wait until fully available');
    expect(run.stdout).toContain('post-promotion check 1 (14m left): FAIL · stable error rate 12.1% (293 of 2,423 requests)');
    expect(run.stdout).toContain('dry-run: would set the stable Deployment back to the image it ran before the rollout');
    expect(run.stdout).toContain('ROLLED BACK AFTER PROMOTION: rolled back after promotion by the post-promotion watch: error-rate:');
    expect(run.stdout).toContain('(2 breaching checks in a row)');
  });

  it('-o json: the record holds the baseline, the watch and the distinct outcome', async () => {
    const run = await runCli([...ARGS, '-o', 'json']);
    expect(run.code).toBe(7);
    const { outcome, record } = JSON.parse(run.stdout) as { outcome: Outcome; record: RolloutRecord };
    expect(outcome).toMatchObject({ result: 'rolled-back-after-promotion', exitCode: 7 });
    expect(record).toMatchObject({
      phase: 'rolled-back-after-promotion',
      baseline: { at: '2026-01-15T10:00:00.000Z', windowMs: 1_800_000, requests: 71_993 },
      watch: { startedAt: '2026-01-15T10:40:00.000Z', result: 'rolled-back', checks: 2, failed: 2, breachesInRow: 2 },
    });
    expect(record.watch?.latest?.figures.errorRate).toBeGreaterThan(0.1);
  });

  it('the same recording with the default policy (no watch) promotes, as a rollout without postPromotion always did', async () => {
    const run = await runCli(ARGS.slice(0, -2));
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('PROMOTED');
    expect(run.stdout).not.toContain('post-promotion');
  });
});

describe('canary validate with spec.postPromotion', () => {
  it('summarises the watch, and refuses a bad one naming the field', async () => {
    const ok = await runCli(['validate', join(REPO, 'examples', 'policies', 'post-promotion.yaml')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('after promotion: stable watched for 15m (every 1m) against its 30m before the rollout with the limits of error-rate, p95-latency; set back to the previous image after 2 breaching check(s) in a row (exit 7)');
    const bad = join(mkdtempSync(join(tmpdir(), 'canary-watch-')), 'bad.yaml');
    writeFileSync(bad, 'apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  postPromotion: { duration: 10m, metrics: [memory] }\n');
    const refused = await runCli(['validate', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('spec.postPromotion.metrics[0]: expected the name of an error-rate or latency metric of spec.analysis.metrics ("error-rate", "p95-latency"), got "memory"');
  });
});
