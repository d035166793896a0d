import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createIncidentSinks } from '../../src/incident/sinks.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { policyFrom, rolledBackRecord, RUN_URL } from '../support/incident-fixtures.js';

const HOOK_PATH = '/services/T0CANARY/B0CANARY/s3cr3tS1ackT0kenXYZ12345';
const noWait = { sleep: async () => undefined };

let record: RolloutRecord;
beforeAll(async () => {
  record = await rolledBackRecord();
});
afterEach(() => {
  nock.cleanAll();
  vi.unstubAllEnvs();
});

function slackSink() {
  const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  dashboardUrl: "https://grafana.example.com/d/canary?var-target={{target}}"
  incidents:
    - type: slack
      webhookUrl: { env: SLACK_WEBHOOK_URL }
`);
  vi.stubEnv('SLACK_WEBHOOK_URL', `https://hooks.slack.com${HOOK_PATH}`);
  const [sink] = createIncidentSinks(policy.incidents, { retry: noWait, ...(policy.dashboardUrl && { dashboardUrl: policy.dashboardUrl }) });
  return sink!;
}

interface Block {
  type: string;
  text?: { text: string };
  elements?: { text: string }[];
}

describe('Slack sink', () => {
  it('posts a message with the reason, the failing numbers, the PromQL and links', async () => {
    let posted: { text: string; blocks: Block[] } | undefined;
    const scope = nock('https://hooks.slack.com')
      .post(HOOK_PATH, (body: { text: string; blocks: Block[] }) => {
        posted = body;
        return true;
      })
      .reply(200, 'ok');
    const result = await slackSink().open(record);
    expect(result).toEqual({ sink: 'slack', ok: true, message: 'posted to Slack' });
    expect(scope.isDone()).toBe(true);
    expect(posted?.text).toMatch(/^canary checkout \(shop\) rolled back at step 2 of 3 \(25%\)/);
    const [header, facts, checks, context] = posted!.blocks;
    expect(header?.text?.text).toBe('Canary rolled back: checkout in shop (shop/checkout:2)');
    expect(facts?.text?.text).toContain('*Images:* stable `shop/checkout:1` → canary `shop/checkout:2`');
    expect(facts?.text?.text).toContain('*Stopped:* step 2 at 25%');
    expect(facts?.text?.text).toContain('*Stable:* verified available');
    expect(checks?.text?.text).toContain('• *error-rate* (error rate ≤ 5%), check 21 at 25%: canary *12%* vs stable 0.51%, limit 5%');
    expect(checks?.text?.text).toContain('status=~"5.."');
    expect(context?.elements?.[0]?.text).toBe(
      `started by <${RUN_URL}|this run> · rollout \`checkout-20260115T100000Z\` · <https://grafana.example.com/d/canary?var-target=checkout|dashboard>`,
    );
  });

  it('retries when Slack answers 500, then succeeds', async () => {
    const scope = nock('https://hooks.slack.com').post(HOOK_PATH).reply(500, 'internal_error').post(HOOK_PATH).reply(200, 'ok');
    const result = await slackSink().open(record);
    expect(scope.isDone()).toBe(true);
    expect(result).toMatchObject({ ok: true, message: 'posted to Slack (after 2 attempts)' });
  });

  it('posts one message per rollout from one process', async () => {
    nock('https://hooks.slack.com').post(HOOK_PATH).once().reply(200, 'ok');
    const sink = slackSink();
    await sink.open(record);
    const again = await sink.open(record);
    expect(again.ok).toBe(true);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('reports a revoked webhook without printing its URL, and does not retry it', async () => {
    const scope = nock('https://hooks.slack.com').post(HOOK_PATH).reply(404, 'no_service');
    const result = await slackSink().open(record);
    expect(scope.isDone()).toBe(true);
    expect(result).toEqual({ sink: 'slack', ok: false, message: 'Slack answered HTTP 404: no_service' });
  });

  it('keeps the token out of a network error message', async () => {
    // An Error, as a real socket gives: axios never settles on nock's plain-object errors.
    nock('https://hooks.slack.com')
      .post(HOOK_PATH)
      .times(10)
      .replyWithError(Object.assign(new Error(`socket hang up at https://hooks.slack.com${HOOK_PATH}`), { code: 'ECONNRESET' }));
    const result = await slackSink().open(record);
    expect(result.ok).toBe(false);
    expect(result.message).not.toContain('s3cr3tS1ackT0kenXYZ12345');
    expect(result.message).toMatch(/^Slack: connection failed \(ECONNRESET: socket hang up at \[URL\]\) \(gave up after \d+ attempts\)$/);
  });
});
