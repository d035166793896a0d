import { SECRETS } from './probe.js';

// Every incident sink pointed at the echo server, with its secrets in every place a sink takes one.

/** spec.incidents entries (YAML, indented for the list under "  incidents:"), answering `status`. */
export function sinkYaml(echoUrl: string, statuses: { webhook: string; slack: string; pagerduty: string; github: string }): string[] {
  return [
    '    - type: webhook',
    '      name: ops-webhook',
    '      timeout: 2s',
    `      url: "${echoUrl}/s${statuses.webhook}/hook?token=${SECRETS.webhookQuery}"`,
    '      secret: { env: PROBE_WEBHOOK_HMAC }',
    '      headers:',
    `        Authorization: "Bearer ${SECRETS.webhookAuth}"`,
    `        X-Api-Key: "${SECRETS.webhookHeader}"`,
    '    - type: slack',
    '      timeout: 2s',
    '      webhookUrl: { env: PROBE_SLACK_URL }',
    '    - type: pagerduty',
    '      timeout: 2s',
    '      routingKey: { env: PROBE_PAGERDUTY_KEY }',
    `      url: "${echoUrl}/s${statuses.pagerduty}/v2/enqueue"`,
    '    - type: github-issue',
    '      timeout: 2s',
    '      repository: acme/shop',
    '      token: { env: PROBE_GITHUB_TOKEN }',
    `      apiUrl: "${echoUrl}/s${statuses.github}"`,
  ];
}

export function sinkEnv(echoUrl: string, slackStatus: string): NodeJS.ProcessEnv {
  return {
    PROBE_WEBHOOK_HMAC: SECRETS.webhookHmac,
    PROBE_SLACK_URL: `${echoUrl}/s${slackStatus}/services/T000/B000/${SECRETS.slackPath}`,
    PROBE_PAGERDUTY_KEY: SECRETS.pagerdutyKey,
    PROBE_GITHUB_TOKEN: SECRETS.githubToken,
  };
}
