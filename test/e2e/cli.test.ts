import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Outcome, RolloutRecord } from '../../src/rollout/record.js';
import { closedPort, promError, startFakePrometheus, vector } from '../support/fake-prometheus.js';
import { REPO, runCli } from '../support/run-cli.js';

// The CLI as a user runs it: a child process without a TTY, on the shipped recordings and on
// the bad inputs that must end with a clear message and the right exit code.

const dir = mkdtempSync(join(tmpdir(), 'canary-e2e-'));
const DEPLOY = ['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run'];
const recording = (name: string) => join(REPO, 'examples', 'recordings', `${name}.json`);
const replay = (name: string, extra: string[] = []) => runCli([...DEPLOY, '--replay', recording(name), ...extra]);
const json = (stdout: string) => JSON.parse(stdout) as { outcome: Outcome; record: RolloutRecord; log: { message: string }[] };

/** A fast-failing policy for the Prometheus error paths: one retry, short backoff is the client's. */
const quickPolicy = join(dir, 'quick.yaml');
writeFileSync(quickPolicy, 'apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  prometheus:\n    retries: 1\n    timeout: 2s\n');

describe('shipped recordings replay to their stated outcomes', () => {
  it('with the threshold policy, error-regression.json rolls back on the window that breaks the 5% limit', async () => {
    const run = await replay('error-regression', ['--policy', join(REPO, 'policies', 'threshold.yaml')]);
    expect(run.code).toBe(3);
    expect(run.stdout).toContain('ROLLED BACK: error-rate: canary error rate 12.1% is above the 5% limit (73 of 605 requests failed)');
  });

  it('healthy.json promotes after 40 checks and exits 0', async () => {
    const run = await replay('healthy', ['-o', 'json']);
    expect(run.code).toBe(0);
    const { outcome, record } = json(run.stdout);
    expect(outcome).toMatchObject({ result: 'promoted', traffic: 'all traffic on stable, which now runs the new image' });
    expect(record.checks).toHaveLength(40);
    expect(record.images.canary).toBe('shop/checkout:2');
  });

  it('error-regression.json rolls back at the first check after the rise (25% step) and exits 3', async () => {
    const run = await replay('error-regression');
    expect(run.code).toBe(3);
    expect(run.stdout).toContain('✗ check 21 [25% · 6/10] error-rate 12.1% vs 0.5%');
    // The sequential judge weighs the window since the rise on its own, so the jump is not diluted.
    expect(run.stdout).toContain(
      'ROLLED BACK: error-rate: canary errors 12.1% vs stable 0.50% over the last check, since 10:20 UTC (step 2, its 6th check): worse than stable by more than the 3-point margin allows, with 99.5% confidence',
    );
    expect(run.stdout).toContain('dry-run: would patch Ingress shop/checkout-canary canary-weight "25" → "0"');
    expect(run.stdout).toContain('traffic: canary at 0%, all traffic on stable');
    // The evidence names the PromQL that decided, abridged; --verbose prints it as sent.
    expect(run.stdout).toContain('sum(window count of nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary!="",status=~"5.."} over 1m)');
    const verbose = await replay('error-regression', ['--verbose']);
    expect(verbose.stdout).toContain('last_over_time(nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary!="",status=~"5.."}[1h] offset 1m)');
  });

  it('latency-regression.json rolls back at the first check of 10% and exits 3', async () => {
    const run = await replay('latency-regression', ['-o', 'json']);
    expect(run.code).toBe(3);
    const { record, outcome } = json(run.stdout);
    expect(record.checks).toHaveLength(1);
    expect(record.checks[0]?.weight).toBe(10);
    expect(outcome.reason).toContain('p95-latency');
  });

  it('no-traffic.json is inconclusive five times, then rolled back with the reason, exit 3', async () => {
    const run = await replay('no-traffic');
    expect(run.code).toBe(3);
    expect(run.stdout.match(/\? check \d/g)).toHaveLength(5);
    expect(run.stdout).toContain(
      'ROLLED BACK: 5 checks in a row were inconclusive (canary has no data for the last 1m: no requests, or fewer than two scrapes in the window (scrape more often or widen the window)); a canary that cannot be judged is not promoted',
    );
  });

  it('prints plain timestamped lines without ANSI codes when not on a TTY, and colours with FORCE_COLOR', async () => {
    const plain = await replay('latency-regression');
    expect(plain.stdout).not.toMatch(/\u001b\[/);
    expect(plain.stdout.split('\n')[0]).toMatch(/^2026-01-15T10:00:00\.000Z {2}canary checkout/);
    const forced = await runCli([...DEPLOY, '--replay', recording('latency-regression')], { FORCE_COLOR: '1' });
    expect(forced.stdout).toMatch(/\u001b\[/);
    const noColor = await runCli([...DEPLOY, '--replay', recording('latency-regression')], { FORCE_COLOR: '1', NO_COLOR: '1' });
    expect(noColor.stdout).not.toMatch(/\u001b\[/);
  });
});

describe('bad input ends with a clear message and exit 2', () => {
  it('a malformed policy names the field and what was expected', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  steps:\n    - { weight: 10, duration: 5m }\n    - { weight: fifty, duration: 5m }\n');
    const run = await runCli([...DEPLOY, '--replay', recording('healthy'), '--policy', bad]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('spec.steps[1].weight: expected a number from 1 to 100, got "fifty"');
    expect(run.stdout).toBe('');
    const validate = await runCli(['validate', bad]);
    expect(validate.code).toBe(2);
    expect((await runCli(['validate', join(REPO, 'policies', 'default.yaml')])).code).toBe(0);
  });

  it('a recording without an answer the rollout needs names the query and time, and leaves the canary at 0%', async () => {
    const doc = JSON.parse(readFileSync(recording('healthy'), 'utf8')) as { entries: { query: string; time: string }[] };
    const missing = doc.entries.findIndex((e) => e.time === '2026-01-15T10:07:00.000Z' && e.query.includes('status=~"5.."'));
    const [removed] = doc.entries.splice(missing, 1);
    const file = join(dir, 'holey.json');
    writeFileSync(file, JSON.stringify(doc));
    const run = await runCli([...DEPLOY, '--replay', file, '-o', 'json']);
    expect(run.code).toBe(2);
    const { outcome } = json(run.stdout);
    expect(outcome.reason).toContain(`has no answer for query ${removed?.query} at 2026-01-15T10:07:00.000Z`);
    expect(outcome.traffic).toBe('canary at 0%, all traffic on stable');
  });

  it('a recording of another target is refused before anything runs', async () => {
    const run = await runCli(['deploy', 'cart', '-n', 'shop', '--image', 'shop/cart:2', '--dry-run', '--replay', recording('healthy')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('the recording is of checkout in namespace shop, not cart in shop');
  });

  it('a file that is not a recording says what was expected', async () => {
    const run = await runCli([...DEPLOY, '--replay', join(REPO, 'package.json')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/package\.json.*recording/);
  });

  it.each([
    [['deploy', 'checkout', '--dry-run', '--replay', 'x.json'], /required option '--image <image>' not specified/],
    [['deploy', 'checkout', '--image', 'not an image', '--dry-run'], /--image: expected an image reference like "shop\/checkout:2", got "not an image"/],
    [['deploy', 'Checkout', '--image', 'a:1', '--dry-run'], /target name: expected a Kubernetes name/],
    [['deploy', 'checkout', '--image', 'a:1', '--dry-run', '-o', 'yaml'], /--output: expected "text" or "json", got "yaml"/],
    [['deploy', 'checkout', '--image', 'a:1', '--dry-run'], /--dry-run: expected a metrics source: --replay FILE/],
    [['deploy', 'checkout', '--image', 'a:1', '--dry-run', '--replay', 'a.json', '--prometheus', 'http://p'], /expected one source of metrics, got both/],
    [['deploy', 'checkout', '--image', 'a:1', '--kubeconfig', '/nonexistent/kubeconfig'], /no usable kubeconfig[\s\S]*--kubeconfig \/nonexistent\/kubeconfig: no such file/],
    [['backtest', 'checkout', '--from', 'yesterday', '--prometheus', 'http://127.0.0.1:9'], /--from: expected an RFC 3339 time like "2026-01-15T10:00:00Z", got "yesterday"/],
    [['backtest', 'checkout', '--from', '2026-01-15T10:00:00Z', '--prometheus', 'ftp://prom'], /expected an http:\/\/ or https:\/\/ URL/],
    [['deploy', 'checkout', '--image', 'a:1', '--bogus'], /unknown option '--bogus'/],
  ])('%j', async (args, message) => {
    const run = await runCli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});

describe('Prometheus failures end with the canary at 0% and a stated exit code', () => {
  const servers: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('an unreachable Prometheus exits 5, naming the URL and where traffic was left', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = await runCli(['backtest', 'checkout', '-n', 'shop', '--policy', quickPolicy, '--prometheus', url, '--from', '2026-01-15T10:00:00Z']);
    expect(run.code).toBe(5);
    expect(run.stdout).toContain(`FAILED: cannot judge the canary: Prometheus at ${url} is unreachable after 2 attempts`);
    expect(run.stdout).toContain('traffic: canary at 0%, all traffic on stable');
  });

  it('Prometheus answering 503 exits 5 with its error', async () => {
    const server = await startFakePrometheus({ handler: () => promError(503, 'unavailable', 'storage is busy') });
    servers.push(server);
    const run = await runCli(['backtest', 'checkout', '-n', 'shop', '--policy', quickPolicy, '--prometheus', server.url, '--from', '2026-01-15T10:00:00Z']);
    expect(run.code).toBe(5);
    expect(run.stdout).toContain('HTTP 503 unavailable: storage is busy');
  });

  it('a query Prometheus rejects as bad_data exits 2: the policy is what needs fixing', async () => {
    const server = await startFakePrometheus({ handler: () => promError(400, 'bad_data', '1:1: parse error: unexpected character') });
    servers.push(server);
    const run = await runCli(['backtest', 'checkout', '-n', 'shop', '--policy', quickPolicy, '--prometheus', server.url, '--from', '2026-01-15T10:00:00Z']);
    expect(run.code).toBe(2);
    expect(run.stdout).toContain('rejected the query as bad_data (HTTP 400): 1:1: parse error: unexpected character; fix the query in the policy');
  });

  it('never sends the bearer token anywhere but the Authorization header', async () => {
    const server = await startFakePrometheus({ handler: () => vector([]) });
    servers.push(server);
    const policy = join(dir, 'token.yaml');
    writeFileSync(policy, 'apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  prometheus:\n    bearerToken: { env: PROM_TOKEN }\n');
    const record = join(dir, 'token-recording.json');
    const run = await runCli(
      ['backtest', 'checkout', '-n', 'shop', '--policy', policy, '--prometheus', server.url, '--from', '2026-01-15T10:00:00Z', '--record', record, '-o', 'json'],
      { PROM_TOKEN: 'tok-9f8e7d6c' },
    );
    // This Prometheus has no data at all: exit 2 at the first check, not a dead canary.
    expect(run.code).toBe(2);
    expect(server.requests[0]?.headers['authorization']).toBe('Bearer tok-9f8e7d6c');
    expect(run.stdout + run.stderr + readFileSync(record, 'utf8')).not.toContain('tok-9f8e7d6c');
  });
});
