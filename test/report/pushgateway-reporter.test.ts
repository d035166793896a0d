import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets } from '../../src/secrets.js';
import type { Policy } from '../../src/policy/policy.js';
import { PushgatewayReporter } from '../../src/report/pushgateway-reporter.js';
import { buildRegistry, countsFromPushgateway } from '../../src/report/rollout-metrics.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import { fanOut, type RolloutEvent } from '../../src/rollout/events.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { freePort } from '../../scripts/free-port.js';
import { checkoutEngine } from '../support/checkout-engine.js';
import { thresholdPolicy } from '../support/policies.js';
import { pushedGroups, pushedValue, pushgatewayUnavailable, startPushgateway, type PushgatewayHandle } from '../support/pushgateway-harness.js';
import { healthy, ScriptedMetrics, type Scenario } from '../support/scripted-metrics.js';
import { START } from '../support/times.js';

// The Pushgateway reporter against a real Pushgateway (Debian's prometheus-pushgateway): whole
// engine rollouts on a virtual clock push their metrics; asserted is what the Pushgateway holds.

const COMMIT = START - 45 * 60_000;
const GROUP = { job: 'canary', namespace: 'shop', target: 'checkout' };

const errors: Scenario = (minute, side) => (side === 'canary' ? { ...healthy(minute, side), errors: 60 } : healthy(minute, side));

function settings(url: string): NonNullable<NonNullable<Policy['metrics']>['pushgateway']> {
  return { url, timeoutMs: 5_000, deadlineMs: 10_000, headers: {}, insecureSkipVerify: false };
}

async function rollout(
  url: string,
  scenario: Scenario,
  warnings: string[] = [],
  extra: Partial<ReturnType<typeof settings>> = {},
): Promise<{ events: RolloutEvent[]; exitCode: number }> {
  const push = new PushgatewayReporter({ settings: { ...settings(url), ...extra }, environment: 'production', commitTimeMs: COMMIT, warn: (l) => warnings.push(l) });
  const seen: RolloutEvent[] = [];
  const policy = thresholdPolicy();
  const { engine } = checkoutEngine({
    policy,
    metrics: new ScriptedMetrics(START, scenario),
    clock: new VirtualClock(START),
    extra: { reporter: fanOut([{ emit: (e) => seen.push(e) }, push]) },
  });
  const outcome = await engine.run();
  await push.close();
  return { events: seen, exitCode: outcome.exitCode };
}

const why = pushgatewayUnavailable();
describe.skipIf(Boolean(why) && !process.env.CI)(`Pushgateway reporter${why ? ` (skipped: ${why})` : ''}`, () => {
  let pg: PushgatewayHandle;
  beforeAll(async () => {
    pg = await startPushgateway();
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
  });

  it('pushes the rollout group; DORA counters continue across rollouts (read back before pushing)', async () => {
    const first = await rollout(pg.url, healthy);
    expect(first.exitCode).toBe(0);
    let groups = await pushedGroups(pg.url);
    expect(pushedValue(groups, GROUP, 'canary_rollout_phase', { phase: 'promoted' })).toBe(1);
    expect(pushedValue(groups, GROUP, 'canary_rollout_phase', { phase: 'progressing' })).toBe(0);
    expect(pushedValue(groups, GROUP, 'canary_rollout_weight')).toBe(0);
    expect(pushedValue(groups, GROUP, 'deployments_total', { outcome: 'promoted', environment: 'production', target: 'checkout' })).toBe(1);
    expect(pushedValue(groups, GROUP, 'deployments_total', { outcome: 'rolled-back' })).toBe(0);
    expect(pushedValue(groups, GROUP, 'deployment_failures_total', { outcome: 'rolled-back' })).toBe(0);
    const finished = first.events.find((e) => e.type === 'finished');
    expect(finished?.type).toBe('finished');
    const promotedAt = finished?.type === 'finished' ? Date.parse(finished.outcome.at) : NaN;
    expect(pushedValue(groups, GROUP, 'deployment_lead_time_seconds')).toBe((promotedAt - COMMIT) / 1000);
    // The last check's values per metric and side, and its verdict.
    expect(pushedValue(groups, GROUP, 'canary_rollout_check_value', { side: 'canary' })).toBeGreaterThanOrEqual(0);
    expect(pushedValue(groups, GROUP, 'canary_rollout_check_verdict', { verdict: 'pass' })).toBe(1);

    const second = await rollout(pg.url, errors);
    expect(second.exitCode).toBe(3);
    groups = await pushedGroups(pg.url);
    expect(pushedValue(groups, GROUP, 'deployments_total', { outcome: 'promoted' })).toBe(1);
    expect(pushedValue(groups, GROUP, 'deployments_total', { outcome: 'rolled-back' })).toBe(1);
    expect(pushedValue(groups, GROUP, 'deployment_failures_total', { outcome: 'rolled-back' })).toBe(1);
    expect(pushedValue(groups, GROUP, 'canary_rollout_phase', { phase: 'rolled-back' })).toBe(1);
    expect(pushedValue(groups, GROUP, 'canary_rollout_check_verdict', { verdict: 'fail' })).toBe(1);
    expect(pushedValue(groups, GROUP, 'incident_recovery_time_minutes')).toBeGreaterThanOrEqual(0);
    // The promoted rollout's lead time is not carried into the rolled-back rollout's group.
    expect(pushedValue(groups, GROUP, 'deployment_lead_time_seconds')).toBeUndefined();
  }, 60_000);

  it('a Pushgateway that does not answer is one warning line; the rollout and its exit code are unchanged', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const warnings: string[] = [];
    const run = await rollout(closed, healthy, warnings);
    expect(run.exitCode).toBe(0);
    expect(run.events.find((e) => e.type === 'finished')).toMatchObject({ outcome: { result: 'promoted' } });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/metrics not pushed to the Pushgateway \(the rollout goes on\)/);
  }, 60_000);
});

describe('Pushgateway credentials', () => {
  afterEach(() => {
    clearRegisteredSecrets();
    delete process.env['PGW_TEST_TOKEN'];
    delete process.env['PGW_TEST_PASSWORD'];
  });

  // A gateway that refuses every request and echoes what it was sent, as a misconfigured proxy might.
  async function echoing(): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.headers['authorization'] ?? ''} ${req.headers['x-scope-orgid'] ?? ''}`);
      res.writeHead(401).end(`denied: ${req.headers['authorization'] ?? ''} ${req.headers['x-scope-orgid'] ?? ''}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
  }

  it('sends the bearer token and headers, and no warning shows them', async () => {
    const gw = await echoing();
    try {
      process.env['PGW_TEST_TOKEN'] = 'tok-3f9a77c1e2d4';
      const warnings: string[] = [];
      const run = await rollout(gw.url, healthy, warnings, { bearerToken: { env: 'PGW_TEST_TOKEN' }, headers: { 'X-Scope-OrgID': 'tenant-secret-42' } });
      expect(run.exitCode).toBe(0);
      expect(gw.seen[0]).toBe('Bearer tok-3f9a77c1e2d4 tenant-secret-42');
      expect(warnings.length).toBeGreaterThanOrEqual(1);
      expect(warnings.join('\n')).toContain('HTTP 401');
      expect(warnings.join('\n')).not.toMatch(/tok-3f9a77c1e2d4|tenant-secret-42/);
    } finally {
      await gw.close();
    }
  }, 60_000);

  it('basic auth: neither the password nor base64 user:password is shown', async () => {
    const gw = await echoing();
    try {
      process.env['PGW_TEST_PASSWORD'] = 'pw-81c0d9e7aa';
      const warnings: string[] = [];
      await rollout(gw.url, healthy, warnings, { basicAuth: { username: 'canary', password: { env: 'PGW_TEST_PASSWORD' } } });
      const encoded = Buffer.from('canary:pw-81c0d9e7aa').toString('base64');
      expect(gw.seen[0]).toBe(`Basic ${encoded} `);
      expect(warnings.join('\n')).not.toMatch(new RegExp(`pw-81c0d9e7aa|${encoded.replace(/[+/=]/g, '.')}`));
      expect(warnings.join('\n')).toContain('[REDACTED]');
    } finally {
      await gw.close();
    }
  }, 60_000);

  it('a secret that is not set is refused before anything is pushed', () => {
    expect(() => new PushgatewayReporter({ settings: { ...settings('http://127.0.0.1:1'), bearerToken: { env: 'PGW_TEST_TOKEN' } }, environment: 'production' })).toThrow(
      /spec\.metrics\.pushgateway\.bearerToken: environment variable PGW_TEST_TOKEN is not set/,
    );
  });
});

describe('rollout metrics registry', () => {
  it('reads counters back only from its own group and environment', () => {
    const answer = {
      status: 'success',
      data: [
        {
          labels: { job: 'canary', namespace: 'shop', target: 'checkout' },
          deployments_total: {
            metrics: [
              { labels: { environment: 'production', outcome: 'promoted' }, value: '7' },
              { labels: { environment: 'staging', outcome: 'rolled-back' }, value: '3' },
            ],
          },
        },
        { labels: { job: 'canary', namespace: 'other', target: 'checkout' }, deployments_total: { metrics: [{ labels: { environment: 'production', outcome: 'promoted' }, value: '99' }] } },
      ],
    };
    expect(countsFromPushgateway(answer, GROUP, 'production')).toEqual({ deployments: { promoted: 7 }, failures: {} });
    expect(countsFromPushgateway(answer, GROUP, 'staging')).toEqual({ deployments: { 'rolled-back': 3 }, failures: {} });
    expect(countsFromPushgateway({ nope: 1 }, GROUP, 'production')).toBeUndefined();
  });

  it('one phase series per phase, 1 for the current', async () => {
    const record = { id: 'r1', target: 'checkout', namespace: 'shop', phase: 'progressing', stepIndex: 1, weight: 25, images: { stable: 'a:1', canary: 'a:2' }, startedBy: 'me', startedAt: new Date(START).toISOString(), policy: { name: 'p' }, checks: [] } as unknown as RolloutRecord;
    const text = await buildRegistry({ record, environment: 'staging', phase: 'progressing', weight: 25, stepIndex: 1, previous: { deployments: {}, failures: {} } }).metrics();
    expect(text).toContain('canary_rollout_phase{target="checkout",phase="progressing"} 1');
    expect(text).toContain('canary_rollout_phase{target="checkout",phase="promoted"} 0');
    expect(text).toContain('canary_rollout_weight{target="checkout"} 25');
    expect(text).toContain('deployments_total{environment="staging",target="checkout",outcome="promoted"} 0');
  });
});
