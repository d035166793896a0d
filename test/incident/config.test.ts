import { describe, expect, it } from 'vitest';
import { CanaryError, messageOf } from '../../src/errors.js';
import { policyFrom } from '../support/incident-fixtures.js';

const policyWith = (spec: string) =>
  policyFrom(`apiVersion: canary/v1\nkind: RolloutPolicy\nmetadata:\n  name: with-incidents\nspec:\n${spec}`);

function rejection(spec: string): string {
  try {
    policyWith(spec);
  } catch (err) {
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(2);
    return messageOf(err);
  }
  throw new Error('expected the policy to be rejected');
}

describe('incident sinks in the policy', () => {
  it('resolves all four sink types with their defaults', () => {
    const policy = policyWith(`
  dashboardUrl: "https://grafana.example.com/d/canary?var-target={{target}}&from={{from}}&to={{to}}"
  incidents:
    - type: webhook
      url: https://hooks.example.com/canary
      secret: { env: CANARY_WEBHOOK_SECRET }
      headers: { X-Team: payments }
    - type: slack
      webhookUrl: { env: SLACK_WEBHOOK_URL }
      timeout: 10s
    - type: pagerduty
      routingKey: { file: /var/run/secrets/pagerduty/routing-key }
    - type: github-issue
      labels: [canary, rollback]
`);
    expect(policy.dashboardUrl).toBe('https://grafana.example.com/d/canary?var-target={{target}}&from={{from}}&to={{to}}');
    expect(policy.incidents).toEqual([
      { type: 'webhook', name: 'webhook', timeoutMs: 30_000, url: 'https://hooks.example.com/canary', secret: { env: 'CANARY_WEBHOOK_SECRET' }, headers: { 'X-Team': { value: 'payments', public: false } } },
      { type: 'slack', name: 'slack', timeoutMs: 10_000, webhookUrl: { env: 'SLACK_WEBHOOK_URL' } },
      { type: 'pagerduty', name: 'pagerduty', timeoutMs: 30_000, routingKey: { file: '/var/run/secrets/pagerduty/routing-key' }, severity: 'critical', url: 'https://events.pagerduty.com/v2/enqueue' },
      { type: 'github-issue', name: 'github-issue', timeoutMs: 30_000, labels: ['canary', 'rollback'], token: { env: 'GITHUB_TOKEN' } },
    ]);
  });

  it('names no sinks when the policy has none', () => {
    expect(policyFrom().incidents).toEqual([]);
    expect(policyFrom().dashboardUrl).toBeUndefined();
  });

  it('refuses a secret written into the policy without repeating it', () => {
    const message = rejection(`
  incidents:
    - type: pagerduty
      routingKey: R0UT1NGK3Y-pasted-in-the-policy
    - type: slack
      webhookUrl: https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX
`);
    expect(message).toContain('spec.incidents[0].routingKey: expected { env: VARIABLE } or { file: PATH }');
    expect(message).toContain('spec.incidents[1].webhookUrl: a Slack incoming-webhook URL is a secret');
    expect(message).not.toContain('R0UT1NGK3Y');
    expect(message).not.toContain('XXXXXXXX');
  });

  it('names the field and what was expected for other mistakes', () => {
    const message = rejection(`
  dashboardUrl: "https://grafana.example.com/d/x?var-app={{app}}"
  incidents:
    - type: teams
    - type: pagerduty
      routingKey: { env: PD_KEY }
      severity: urgent
    - type: github-issue
      repository: not a repo
`);
    expect(message).toContain('spec.dashboardUrl: unknown placeholder {{app}}');
    expect(message).toContain('spec.incidents[0].type: expected type "webhook", "slack", "pagerduty", "github-issue", got "teams"');
    // Values in sink fields are never quoted back: a token pasted into the wrong field would reach the CI log.
    expect(message).toContain('spec.incidents[1].severity: expected one of "critical", "error", "warning", "info", got a string that does not fit (not shown: it may be a secret)');
    expect(message).toContain('spec.incidents[2].repository: expected a repository like "acme/shop", got a string that does not fit (not shown: it may be a secret)');
    expect(message).not.toContain('urgent');
    expect(message).not.toContain('not a repo');
  });

  it('asks for distinct names when two sinks share a type', () => {
    const message = rejection(`
  incidents:
    - type: slack
      webhookUrl: { env: SLACK_TEAM_A }
    - type: slack
      webhookUrl: { env: SLACK_TEAM_B }
`);
    expect(message).toContain('spec.incidents[1].name: "slack" names two sinks; give each sink of the same type its own "name"');
    const named = policyWith(`
  incidents:
    - type: slack
      name: team-a
      webhookUrl: { env: SLACK_TEAM_A }
    - type: slack
      name: team-b
      webhookUrl: { env: SLACK_TEAM_B }
`);
    expect(named.incidents.map((s) => s.name)).toEqual(['team-a', 'team-b']);
  });
});
