import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PagerDutyEvent } from '../../src/incident/pagerduty.js';
import { createIncidentSinks } from '../../src/incident/sinks.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { policyFrom, rolledBackRecord, RUN_URL } from '../support/incident-fixtures.js';
import { checkoutQuery } from '../support/preset-queries.js';

const ROUTING_KEY = 'R0UT1NGKEYa1b2c3d4e5f6a7b8c9d0e1';
const noWait = { sleep: async () => undefined };

let record: RolloutRecord;
let dir: string;
let keyFile: string;
beforeAll(async () => {
  record = await rolledBackRecord();
  dir = mkdtempSync(join(tmpdir(), 'canary-pd-'));
  keyFile = join(dir, 'routing-key');
  // As `kubectl create secret --from-file` or `echo` leave it: with a trailing newline.
  writeFileSync(keyFile, `${ROUTING_KEY}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => nock.cleanAll());

function pagerDutySink(extra = '', dryRun = false) {
  const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: pagerduty
      routingKey: { file: ${keyFile} }${extra}
`);
  const [sink] = createIncidentSinks(policy.incidents, { retry: noWait, dryRun });
  return sink!;
}

describe('PagerDuty sink', () => {
  it('triggers an Events API v2 alert keyed by the rollout id, with the evidence in custom_details', async () => {
    let event: PagerDutyEvent | undefined;
    const scope = nock('https://events.pagerduty.com')
      .post('/v2/enqueue', (body: PagerDutyEvent) => {
        event = body;
        return true;
      })
      .reply(202, { status: 'success', message: 'Event processed', dedup_key: 'checkout-20260115T100000Z' });
    const result = await pagerDutySink().open(record);
    expect(scope.isDone()).toBe(true);
    expect(result).toEqual({ sink: 'pagerduty', ok: true, message: 'PagerDuty alert triggered (dedup_key checkout-20260115T100000Z)' });
    expect(event).toMatchObject({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'checkout-20260115T100000Z',
      client: 'canary',
      client_url: RUN_URL,
      links: [{ href: RUN_URL, text: 'Run that started the rollout' }],
      payload: {
        source: 'canary/shop/checkout',
        severity: 'critical',
        component: 'checkout',
        group: 'shop',
        timestamp: '2026-01-15T10:21:00.000Z',
      },
    });
    expect(event?.payload.summary).toMatch(/^canary checkout \(shop\) rolled back at step 2 of 3 \(25%\): error-rate: canary error rate 12% is above the 5% limit/);
    const details = event!.payload.custom_details as { failing_checks: Record<string, unknown>[]; traffic: string; stable_verified: boolean; images: unknown };
    expect(details.failing_checks[0]).toMatchObject({ check: 21, weight: 25, metric: 'error-rate', canary: '12%', stable: '0.51%', limit: '5%' });
    expect(details.failing_checks[0]?.['promql']).toContain(
      checkoutQuery('errors', 'canary'),
    );
    expect(details).toMatchObject({ traffic: 'canary at 0%, all traffic on stable', stable_verified: true, images: { stable: 'shop/checkout:1', canary: 'shop/checkout:2' } });
  });

  it('retries a 500 and a 429 with the same dedup_key, so PagerDuty keeps one alert', async () => {
    const keys: string[] = [];
    const capture = (body: PagerDutyEvent) => {
      keys.push(body.dedup_key);
      return true;
    };
    const scope = nock('https://events.pagerduty.com')
      .post('/v2/enqueue', capture)
      .reply(500)
      .post('/v2/enqueue', capture)
      .reply(429, { status: 'throttle event' })
      .post('/v2/enqueue', capture)
      .reply(202, { status: 'success', dedup_key: 'checkout-20260115T100000Z' });
    const result = await pagerDutySink().open(record);
    expect(scope.isDone()).toBe(true);
    expect(result).toMatchObject({ ok: true, message: 'PagerDuty alert triggered (dedup_key checkout-20260115T100000Z) (after 3 attempts)' });
    expect(keys).toEqual(['checkout-20260115T100000Z', 'checkout-20260115T100000Z', 'checkout-20260115T100000Z']);
  });

  it('does not retry an event PagerDuty rejects, and never shows the routing key', async () => {
    const scope = nock('https://events.pagerduty.com')
      .post('/v2/enqueue')
      .reply(400, { status: 'invalid event', message: 'Event object is invalid', errors: [`Routing key ${ROUTING_KEY} is unknown`] });
    const result = await pagerDutySink().open(record);
    expect(scope.isDone()).toBe(true);
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/^PagerDuty answered HTTP 400: .*Event object is invalid/);
    expect(result.message).toContain('[REDACTED]');
    expect(result.message).not.toContain(ROUTING_KEY);
  });

  it('sends to the EU service and with the severity the policy asks for', async () => {
    let severity: string | undefined;
    const scope = nock('https://events.eu.pagerduty.com')
      .post('/v2/enqueue', (body: PagerDutyEvent) => {
        severity = body.payload.severity;
        return true;
      })
      .reply(202, { status: 'success', dedup_key: 'checkout-20260115T100000Z' });
    const result = await pagerDutySink('\n      severity: warning\n      url: https://events.eu.pagerduty.com/v2/enqueue').open(record);
    expect(scope.isDone()).toBe(true);
    expect(result.ok).toBe(true);
    expect(severity).toBe('warning');
  });

  it('sends a dry-run as info under its own dedup_key, so nobody is paged and no real alert is merged into', async () => {
    let event: PagerDutyEvent | undefined;
    const scope = nock('https://events.pagerduty.com')
      .post('/v2/enqueue', (body: PagerDutyEvent) => {
        event = body;
        return true;
      })
      .reply(202, { status: 'success', message: 'Event processed' });
    const result = await pagerDutySink('', true).open(record);
    expect(scope.isDone()).toBe(true);
    expect(result).toEqual({ sink: 'pagerduty', ok: true, message: 'PagerDuty alert triggered (dedup_key dry-run:checkout-20260115T100000Z)' });
    expect(event).toMatchObject({ dedup_key: 'dry-run:checkout-20260115T100000Z', payload: { severity: 'info' } });
    expect(event?.payload.summary).toMatch(/^\[dry-run\] canary checkout \(shop\) rolled back/);
    // The dry-run only assumed stable was available.
    expect(event?.payload.custom_details).toMatchObject({ dry_run: true, stable_verified: null });
  });
});
