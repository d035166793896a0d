import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadRecording, RecordingSource, writeRecording } from '../../src/analysis/recording.js';
import { deployCommand } from '../../src/cli/deploy.js';
import { main } from '../../src/cli/main.js';
import { rolloutMarker } from '../../src/incident/incident.js';
import type { PagerDutyEvent } from '../../src/incident/pagerduty.js';
import { verifySignature, type WebhookBody } from '../../src/incident/webhook.js';
import { loadPolicy } from '../../src/policy/loader.js';
import { ScriptedMetrics } from '../support/scripted-metrics.js';
import { errorRegression, runRollout, ScriptedRawQuerier, START } from '../support/incident-fixtures.js';

// `canary deploy --dry-run --replay` of a regression, in a GitHub Actions environment, with a
// policy naming all four incident sinks: every sink gets the incident with the evidence, the job
// summary and outputs are written, and the exit code is 3.

const SECRETS = {
  webhook: 'e2e-webhook-hmac-secret-4b7c',
  slackPath: '/services/TE2E/BE2E/e2eSlackToken0123456789ab',
  routingKey: 'E2EROUTINGKEY0123456789abcdef01',
  token: 'ghs_e2eToken0123456789abcdefghijklm',
};
const SHIPPED = new URL('../../examples/recordings/error-regression.json', import.meta.url).pathname;

let dir: string;
let webhook: { url: string; received: { headers: IncomingHttpHeaders; body: string }[]; close: () => Promise<void> };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'canary-e2e-incidents-'));
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  webhook = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/canary`,
    received,
    close: () => new Promise((r) => server.close(() => r())),
  };
});
afterAll(async () => {
  await webhook.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  nock.cleanAll();
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  webhook.received.length = 0;
});

function writePolicy(name: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    `apiVersion: canary/v1
kind: RolloutPolicy
metadata:
  name: default
spec:
  dashboardUrl: "https://grafana.example.com/d/canary?var-namespace={{namespace}}&var-target={{target}}&from={{from}}&to={{to}}"
  incidents:
    - type: webhook
      name: ops-webhook
      url: { env: E2E_WEBHOOK_URL }
      secret: { env: E2E_WEBHOOK_SECRET }
    - type: slack
      webhookUrl: { env: E2E_SLACK_WEBHOOK_URL }
    - type: pagerduty
      routingKey: { env: E2E_PAGERDUTY_ROUTING_KEY }
    - type: github-issue
      labels: [canary]
`,
  );
  return path;
}

/** Records the scripted regression through the real recorder, as `--record` would write it. */
async function makeRecording(policyPath: string): Promise<string> {
  const recorder = new RecordingSource(new ScriptedRawQuerier(new ScriptedMetrics(START, errorRegression)), {
    target: 'checkout',
    namespace: 'shop',
    startedAt: new Date(START).toISOString(),
    policy: 'default',
    description: 'canary error rate rises to 12% at 25%',
  });
  await runRollout({ policy: loadPolicy(policyPath), metrics: recorder });
  const path = join(dir, 'regression.json');
  writeRecording(path, recorder.recording());
  return path;
}

interface Captured {
  slack?: { text: string; blocks: { text?: { text: string } }[] };
  pagerduty?: PagerDutyEvent;
  issue?: { title: string; body: string; labels: string[] };
}

function saasMocks(captured: Captured) {
  return [
    nock('https://hooks.slack.com')
      .post(SECRETS.slackPath, (b: Captured['slack']) => ((captured.slack = b), true))
      .reply(200, 'ok'),
    nock('https://events.pagerduty.com')
      .post('/v2/enqueue', (b: PagerDutyEvent) => ((captured.pagerduty = b), true))
      .reply(202, { status: 'success', message: 'Event processed', dedup_key: 'x' }),
    nock('https://api.github.com', { reqheaders: { authorization: `Bearer ${SECRETS.token}` } })
      .get('/repos/acme/shop/issues')
      // Any open issue carrying the rollout's marker counts, whatever its labels are now.
      .query((q) => q['state'] === 'open' && q['page'] === '1' && !('labels' in q))
      .reply(200, [])
      .post('/repos/acme/shop/issues', (b: Captured['issue']) => ((captured.issue = b), true))
      .reply(201, { number: 31, html_url: 'https://github.com/acme/shop/issues/31' }),
  ];
}

async function deployInActions(args: string[]) {
  const summaryPath = join(dir, `summary-${Math.random().toString(36).slice(2)}.md`);
  const outputPath = join(dir, `output-${Math.random().toString(36).slice(2)}`);
  writeFileSync(summaryPath, '');
  writeFileSync(outputPath, '');
  const env: Record<string, string> = {
    GITHUB_ACTIONS: 'true',
    GITHUB_STEP_SUMMARY: summaryPath,
    GITHUB_OUTPUT: outputPath,
    GITHUB_REPOSITORY: 'acme/shop',
    GITHUB_RUN_ID: '777',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: 'https://api.github.com',
    GITHUB_TOKEN: SECRETS.token,
    E2E_WEBHOOK_URL: webhook.url,
    E2E_WEBHOOK_SECRET: SECRETS.webhook,
    E2E_SLACK_WEBHOOK_URL: `https://hooks.slack.com${SECRETS.slackPath}`,
    E2E_PAGERDUTY_ROUTING_KEY: SECRETS.routingKey,
    NO_COLOR: '1',
  };
  for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  const before = process.exitCode;
  let exitCode: number | string | undefined;
  try {
    await main(['node', 'canary', 'deploy', ...args]);
    exitCode = process.exitCode;
  } finally {
    process.exitCode = before;
    vi.restoreAllMocks();
  }
  const outputs = Object.fromEntries(
    readFileSync(outputPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { exitCode, stdout, stderr, summary: readFileSync(summaryPath, 'utf8'), outputs };
}

function expectNoSecrets(...texts: string[]) {
  for (const text of texts) for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
}

describe('dry-run replay of a regression with all four incident sinks, in GitHub Actions', () => {
  it('delivers four incidents with the evidence, writes the job summary and outputs, and exits 3', async () => {
    const policy = writePolicy('all-sinks');
    const recording = await makeRecording(policy);
    const captured: Captured = {};
    const mocks = saasMocks(captured);

    const run = await deployInActions(['checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run', '--replay', recording, '--policy', policy]);

    expect(run.exitCode).toBe(3);
    for (const m of mocks) expect(m.isDone()).toBe(true);

    // Webhook: signed body, same evidence.
    expect(webhook.received).toHaveLength(1);
    const delivery = webhook.received[0]!;
    expect(verifySignature(delivery.body, SECRETS.webhook, delivery.headers['x-canary-signature-256'] as string)).toBe(true);
    const body = JSON.parse(delivery.body) as WebhookBody;
    expect(body.incident).toMatchObject({
      dryRun: true,
      target: 'checkout',
      namespace: 'shop',
      images: { stable: null, canary: 'shop/checkout:2' },
      failedAt: { step: 2, steps: 3, weight: 25, check: 21 },
      startedBy: 'https://github.com/acme/shop/actions/runs/777',
      // A dry-run only assumed stable was available.
      rollback: { traffic: 'canary at 0%, all traffic on stable', stableVerified: null },
    });
    expect(body.incident.failingChecks[0]).toMatchObject({ metric: 'error-rate', display: { canary: '12%', stable: '0.51%', threshold: '3.51%' } });
    expect(body.incident.dashboardUrl).toMatch(/^https:\/\/grafana\.example\.com\/d\/canary\?var-namespace=shop&var-target=checkout&from=\d+&to=\d+$/);

    // Slack, PagerDuty, GitHub: what a person would see.
    expect(captured.slack?.text).toMatch(/^\[dry-run\] canary checkout \(shop\) rolled back at step 2 of 3 \(25%\)/);
    expect(captured.slack?.blocks.map((b) => b.text?.text ?? '').join('\n')).toContain('canary *12%* vs stable 0.51%, limit 3.51%');
    // A dry-run pages nobody: severity info, and its own dedup_key so no real alert absorbs it.
    expect(captured.pagerduty).toMatchObject({
      routing_key: SECRETS.routingKey,
      event_action: 'trigger',
      dedup_key: `dry-run:${body.incident.rolloutId}`,
      payload: { severity: 'info' },
    });
    expect(captured.slack?.blocks.map((b) => b.text?.text ?? '').join('\n')).toContain('*Stable:* not verified (dry-run)');
    expect(captured.pagerduty?.payload.summary).toContain('error-rate: canary errors 12.0% vs stable 0.51% over the last check, since 10:20 UTC (step 2, its 6th check): worse than stable by more than the 3-point margin allows, with 99.5% confidence');
    expect(captured.issue?.title).toBe('[dry-run] Canary rolled back: checkout in shop (shop/checkout:2)');
    expect(captured.issue?.body.startsWith(rolloutMarker(body.incident.rolloutId))).toBe(true);
    expect(captured.issue?.labels).toEqual(['canary']);
    expect(captured.issue?.body).toContain('| Stable after rollback | not verified (dry-run) |');

    // Job summary and outputs: a dry-run says so, and does not claim stable was verified.
    expect(run.summary).toContain('## Dry-run: ❌ Canary rolled back: `checkout` → `shop/checkout:2`');
    expect(run.summary).toContain('| Stable after rollback | not verified (dry-run) |');
    expect(run.summary).not.toContain('verified available');
    for (const sink of ['ops-webhook', 'slack', 'pagerduty', 'github-issue']) expect(run.summary).toMatch(new RegExp(`\\| ${sink} \\| ✅ delivered \\|`));
    expect(run.summary).toContain('```mermaid\nxychart-beta');
    // The sequential latency judge counts slow requests, but the chart shows the P95s people compare.
    expect(run.summary).toContain('title "p95-latency: canary vs stable (ms)"');
    expect(run.summary).toMatch(/\| 21 \| \+21 \| 25% \| ❌ fail \| 12% \/ 0\.51% \| 250 ?ms \/ 250 ?ms \|/);
    expect(run.outputs).toEqual({
      result: 'rolled-back',
      'rollout-id': body.incident.rolloutId,
      'final-weight': '0',
      'incident-url': 'https://github.com/acme/shop/issues/31',
      'exit-code': '3',
    });

    // The log: a group per step, the reason as a notice (a dry-run broke nothing), plain text (no ANSI).
    expect(run.stdout).toContain('::group::Step 1/3: 10%25 to canary for 15m');
    expect(run.stdout).toMatch(/^::notice title=Dry-run%3A Canary rolled back%3A checkout::error-rate: canary errors 12.0%25 vs stable 0.51%25 over the last check/m);
    expect(run.stdout).not.toMatch(/^::error/m);
    expect(run.stdout).toContain('incident opened in github-issue: https://github.com/acme/shop/issues/31');
    expect(run.stdout).not.toMatch(/\u001b\[/);
    expectNoSecrets(run.stdout, run.stderr, run.summary, JSON.stringify(run.outputs));
  });

  it('keeps exit 3 when a sink fails, warns about it, and still delivers the others', async () => {
    const policy = writePolicy('one-fails');
    const recording = await makeRecording(policy);
    const captured: Captured = {};
    nock('https://hooks.slack.com').post(SECRETS.slackPath).reply(404, 'no_service');
    const [, pagerduty, github] = saasMocks(captured);

    const run = await deployInActions(['checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run', '--replay', recording, '--policy', policy]);

    expect(run.exitCode).toBe(3);
    expect(pagerduty!.isDone() && github!.isDone()).toBe(true);
    expect(webhook.received).toHaveLength(1);
    expect(run.stdout).toContain('::warning title=Incident sink slack failed::Slack answered HTTP 404: no_service');
    expect(run.summary).toContain('| slack | ⚠️ failed | Slack answered HTTP 404: no_service |');
    expect(run.outputs['result']).toBe('rolled-back');
    expectNoSecrets(run.stdout, run.stderr, run.summary);
  });

  it('sends nothing with --no-incident, and refuses to start when a sink secret is missing', async () => {
    const policy = writePolicy('no-incident');
    const recording = await makeRecording(policy);
    const args = ['checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run', '--replay', recording, '--policy', policy];
    const quiet = await deployInActions([...args, '--no-incident']);
    expect(quiet.exitCode).toBe(3);
    expect(webhook.received).toHaveLength(0);
    expect(quiet.summary).not.toContain('### Incidents');

    vi.stubEnv('E2E_PAGERDUTY_ROUTING_KEY', '');
    const before = process.exitCode;
    let stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await main(['node', 'canary', 'deploy', ...args]);
    const code = process.exitCode;
    process.exitCode = before;
    vi.restoreAllMocks();
    expect(code).toBe(2);
    expect(stderr).toContain('spec.incidents[2].routingKey: environment variable E2E_PAGERDUTY_ROUTING_KEY is empty');
  });

  it.skipIf(!existsSync(SHIPPED))('replays the shipped error-regression recording into four incidents and exits 3', async () => {
    const meta = loadRecording(SHIPPED).meta;
    const policy = writePolicy('shipped');
    const captured: Captured = {};
    const mocks = saasMocks(captured);
    const run = await deployInActions([meta.target, '-n', meta.namespace, '--image', 'shop/checkout:2', '--dry-run', '--replay', SHIPPED, '--policy', policy]);
    expect(run.exitCode).toBe(3);
    for (const m of mocks) expect(m.isDone()).toBe(true);
    expect(webhook.received).toHaveLength(1);
    expect(captured.pagerduty?.payload.custom_details['failing_checks']).not.toEqual([]);
    expect(run.outputs['result']).toBe('rolled-back');
    for (const sink of ['ops-webhook', 'slack', 'pagerduty', 'github-issue']) expect(run.summary).toMatch(new RegExp(`\\| ${sink} \\| ✅ delivered \\|`));
  });

  it('on a cancelled job, --on-cancel is passed to the engine: rollback or leave, recorded and exit 4', async () => {
    const policy = writePolicy('cancel');
    const recording = await makeRecording(policy);
    const cancelled = new AbortController();
    cancelled.abort();
    for (const onCancel of ['rollback', 'leave'] as const) {
      const summaryPath = join(dir, `cancel-${onCancel}.md`);
      const outputPath = join(dir, `cancel-${onCancel}-output`);
      writeFileSync(outputPath, '');
      vi.stubEnv('GITHUB_ACTIONS', 'true');
      vi.stubEnv('GITHUB_STEP_SUMMARY', summaryPath);
      vi.stubEnv('GITHUB_OUTPUT', outputPath);
      vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      const code = await deployCommand('checkout', {
        namespace: 'shop',
        image: 'shop/checkout:2',
        dryRun: true,
        replay: recording,
        policy,
        onCancel,
        incident: false,
        signal: cancelled.signal,
      });
      vi.restoreAllMocks();
      expect(code).toBe(4);
      const outputs = readFileSync(outputPath, 'utf8');
      expect(outputs).toContain('result=aborted\n');
      expect(outputs).toContain(`final-weight=0\n`);
      const summary = readFileSync(summaryPath, 'utf8');
      expect(summary).toContain(onCancel === 'leave' ? 'aborted: cancelled (traffic left as it was, --on-cancel leave)' : '**Reason:** aborted: cancelled');
    }
    await expect(deployCommand('checkout', { namespace: 'shop', image: 'shop/checkout:2', dryRun: true, replay: recording, onCancel: 'stay' })).rejects.toThrowError(
      '--on-cancel: expected "rollback" (send the canary to 0%) or "leave" (keep its weight), got "stay"',
    );
  });
});
