import { describe, expect, it } from 'vitest';
import { buildIncident, dashboardLink, incidentMarkdown, rolloutMarker, stableLine } from '../../src/incident/incident.js';
import { errorRegression, policyFrom, rolledBackRecord, runRollout, RUN_URL } from '../support/incident-fixtures.js';
import { checkoutQuery } from '../support/preset-queries.js';

const DASHBOARD = 'https://grafana.example.com/d/canary?var-ns={{namespace}}&var-target={{target}}&from={{from}}&to={{to}}&var-image={{image}}';

describe('incident content', () => {
  it('carries what on-call needs: where, which images, the failing numbers with their PromQL, and the rollback', async () => {
    const incident = buildIncident(await rolledBackRecord(), { dashboardUrl: DASHBOARD });
    expect(incident).toMatchObject({
      rolloutId: 'checkout-20260115T100000Z',
      result: 'rolled-back',
      exitCode: 3,
      target: 'checkout',
      namespace: 'shop',
      images: { stable: 'shop/checkout:1', canary: 'shop/checkout:2' },
      failedAt: { step: 2, steps: 3, weight: 25, check: 21 },
      rollback: { traffic: 'canary at 0%, all traffic on stable', stableVerified: true },
      startedBy: RUN_URL,
      runUrl: RUN_URL,
      dryRun: false,
    });
    expect(incident.title).toBe('Canary rolled back: checkout in shop (shop/checkout:2)');
    expect(incident.summary).toMatch(/^canary checkout \(shop\) rolled back at step 2 of 3 \(25%\): error-rate: canary error rate 12% is above the 5% limit/);
    const limit = incident.failingChecks.find((f) => f.comparison === 'error rate ≤ 5%');
    expect(limit).toMatchObject({ check: 21, weight: 25, metric: 'error-rate', canary: 0.12, threshold: 0.05, display: { canary: '12%', stable: '0.51%', threshold: '5%' } });
    expect(limit?.queries).toContain(
      checkoutQuery('errors', 'canary'),
    );
    expect(incident.failingChecks.map((f) => f.comparison)).toEqual(['error rate ≤ 5%', 'error rate ≤ stable + 3 points']);
    // Grafana wants epoch milliseconds; five minutes either side of the rollout.
    expect(incident.dashboardUrl).toBe(
      `https://grafana.example.com/d/canary?var-ns=shop&var-target=checkout&from=${Date.parse('2026-01-15T09:55:00Z')}&to=${Date.parse('2026-01-15T10:26:00Z')}&var-image=shop%2Fcheckout%3A2`,
    );
  });

  it('tells the story in order: start, each step followed by its checks, rollback, stable verified', async () => {
    const { timeline } = buildIncident(await rolledBackRecord());
    const texts = timeline.map((t) => t.text);
    expect(texts[0]).toBe(`rollout started by ${RUN_URL}: shop/checkout:2 against stable shop/checkout:1`);
    expect(texts[1]).toBe('step 1: 10% of traffic to the canary');
    expect(texts.indexOf('step 2: 25% of traffic to the canary')).toBe(texts.findIndex((t) => t.startsWith('check 15 ')) + 1);
    expect(texts.filter((t) => t.startsWith('check '))).toHaveLength(21);
    expect(texts.at(-4)).toMatch(/^check 21 at 25%: fail · error-rate 12% vs 0.51%/);
    expect(texts.slice(-3)).toEqual([
      expect.stringMatching(/^rollback: error-rate: canary error rate 12%/),
      'rolled back: canary at 0%, all traffic on stable',
      'stable verified available (Deployment checkout assumed available (dry-run))',
    ]);
  });

  it('marks a dry-run so nobody is paged into fixing a cluster that was never touched', async () => {
    const incident = buildIncident(await rolledBackRecord(), { dryRun: true });
    expect(incident.title).toBe('[dry-run] Canary rolled back: checkout in shop (shop/checkout:2)');
    expect(incident.summary.startsWith('[dry-run] ')).toBe(true);
    expect(incidentMarkdown(incident)).toContain('| Dry-run | yes: nothing in the cluster was changed |');
  });

  it('does not claim a dry-run verified stable: it only assumed it was available', async () => {
    const incident = buildIncident(await rolledBackRecord(), { dryRun: true });
    expect(incident.rollback.stableVerified).toBeNull();
    expect(stableLine(incident)).toBe('not verified (dry-run)');
    const md = incidentMarkdown(incident);
    expect(md).toContain('| Stable after rollback | not verified (dry-run) |');
    expect(md).not.toContain('verified available');
    expect(incident.timeline.at(-1)?.text).toBe('stable not verified (dry-run)');
  });

  it('gives the weight of the step it stopped in, even when that step had no check yet', async () => {
    const record = await rolledBackRecord();
    // Cancelled right after step 3 (50%) started, before its first check: the last check is at 25%.
    const stopped = {
      ...record,
      steps: [...record.steps.map((s) => ({ ...s, endedAt: s.endedAt ?? '2026-01-15T10:25:00.000Z' })), { index: 2, weight: 50, startedAt: '2026-01-15T10:25:00.000Z' }],
      checks: record.checks.slice(0, 20),
    };
    const incident = buildIncident(stopped);
    expect(incident.failedAt).toEqual({ step: 3, steps: 3, weight: 50, check: 20 });
    expect(incident.summary).toContain('at step 3 of 3 (50%)');
  });

  it('lists each failed check when several failures were needed to roll back', async () => {
    const policy = policyFrom('apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  analysis:\n    failureLimit: 3\n    countFailures: total\n');
    const { record } = await runRollout({ policy, scenario: errorRegression });
    const incident = buildIncident(record);
    expect([...new Set(incident.failingChecks.map((f) => f.check))]).toEqual([21, 22, 23]);
  });

  it('puts a hidden rollout marker and a readable evidence table in the markdown', async () => {
    const md = incidentMarkdown(buildIncident(await rolledBackRecord()));
    expect(md.startsWith(rolloutMarker('checkout-20260115T100000Z'))).toBe(true);
    expect(md).toContain('| 21 (25%, 2026-01-15T10:21:00.000Z) | error-rate | error rate ≤ 5% | 12% | 0.51% | 5% | fail |');
    expect(md).toContain('| Stable after rollback | verified available');
    expect(md).toContain('```promql');
  });

  it('leaves unknown placeholders alone and encodes substituted values', async () => {
    const record = await rolledBackRecord();
    expect(dashboardLink('https://g/x?a={{target}}&b={{nope}}&id={{ rolloutId }}', record)).toBe('https://g/x?a=checkout&b={{nope}}&id=checkout-20260115T100000Z');
  });
});
