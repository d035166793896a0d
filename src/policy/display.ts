import type { IncidentSinkConfig } from '../incident/config.js';
import { redactUrl, registerHeaderValue, registerUrlSecrets } from '../secrets.js';
import { displayHeaders } from './headers.js';
import { displayHooks } from './hooks-schema.js';
import type { Policy } from './policy.js';

// The policy as `canary validate -o json` shows it: everything an operator needs to check it, and
// no secret. Header values not marked public become "[REDACTED]", URLs lose their user info and
// query values, and references to env vars and files stay (they name where a secret is, not what).
// The literal values are also registered, so the text redaction catches them in any other form.

function displayUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  registerUrlSecrets(url);
  return redactUrl(url);
}

function displaySink(sink: IncidentSinkConfig): Record<string, unknown> {
  switch (sink.type) {
    case 'webhook':
      for (const [name, h] of Object.entries(sink.headers)) if (!h.public && h.value !== undefined) registerHeaderValue(name, h.value);
      return { ...sink, url: typeof sink.url === 'string' ? displayUrl(sink.url) : sink.url, headers: displayHeaders(sink.headers) };
    case 'pagerduty':
      return { ...sink, url: displayUrl(sink.url) };
    case 'github-issue':
      return { ...sink, ...(sink.apiUrl !== undefined && { apiUrl: displayUrl(sink.apiUrl) }) };
    case 'slack':
      return { ...sink };
  }
}

export function displayPolicy(policy: Policy): Record<string, unknown> {
  const p = policy.prometheus;
  for (const [name, h] of Object.entries(p.headers)) if (!h.public && h.value !== undefined) registerHeaderValue(name, h.value);
  return {
    ...policy,
    prometheus: { ...p, ...(p.url !== undefined && { url: displayUrl(p.url) }), headers: displayHeaders(p.headers) },
    incidents: policy.incidents.map(displaySink),
    ...(policy.dashboardUrl !== undefined && { dashboardUrl: policy.dashboardUrl }),
    ...(policy.smokeTests && {
      smokeTests: {
        ...policy.smokeTests,
        tests: policy.smokeTests.tests.map((t) => {
          for (const [name, h] of Object.entries(t.headers)) if (!h.public && h.value !== undefined) registerHeaderValue(name, h.value);
          return { ...t, ...(t.url !== undefined && { url: displayUrl(t.url) }), headers: displayHeaders(t.headers) };
        }),
      },
    }),
    ...(policy.hooks && { hooks: displayHooks(policy.hooks) }),
  };
}
