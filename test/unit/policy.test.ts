import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { loadPolicy } from '../../src/policy/loader.js';
import { parseDuration, parseFraction, parseSeconds } from '../../src/policy/units.js';

const dir = mkdtempSync(join(tmpdir(), 'canary-policy-'));
let n = 0;
function file(text: string): string {
  const path = join(dir, `p${(n += 1)}.yaml`);
  writeFileSync(path, text);
  return path;
}

const HEAD = 'apiVersion: canary/v1\nkind: RolloutPolicy\n';

/** The problems a policy file is rejected with, as the operator sees them. */
function problems(text: string): string[] {
  try {
    loadPolicy(file(text));
  } catch (err) {
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(2);
    return [(err as CanaryError).message, ...(err as CanaryError).details];
  }
  throw new Error('policy was accepted');
}

describe('policy loading', () => {
  it('loads the shipped default with the runbook numbers', () => {
    const p = loadPolicy();
    expect(p.steps).toEqual([
      { weight: 10, durationMs: 15 * 60_000 },
      { weight: 25, durationMs: 10 * 60_000 },
      { weight: 50, durationMs: 15 * 60_000 },
    ]);
    expect(p.intervalMs).toBe(60_000);
    expect(p.analysis.metrics).toEqual([
      { name: 'error-rate', type: 'error-rate', critical: true, judge: 'sequential', max: 0.05, maxIncrease: 0.03 },
      { name: 'p95-latency', type: 'latency', critical: true, judge: 'sequential', quantile: 0.95, max: 2, maxRatio: 1.5 },
      { name: 'memory', type: 'query', critical: false, judge: 'threshold', query: 'memory', unit: 'bytes' },
      { name: 'cpu', type: 'query', critical: false, judge: 'threshold', query: 'cpu', unit: 'cores' },
    ]);
    expect(p.analysis.queries['errors']).toContain('nginx_ingress_controller_requests');
  });

  it('merges a user policy over the default: fields left out keep the default', () => {
    const p = loadPolicy(file(`${HEAD}spec:\n  analysis:\n    minRequests: 100\n`));
    expect(p.analysis.minRequests).toBe(100);
    expect(p.steps).toHaveLength(3);
    expect(p.analysis.metrics).toHaveLength(4);
  });

  it('switches to the application-metrics preset', () => {
    const p = loadPolicy(file(`${HEAD}spec:\n  analysis:\n    preset: app-metrics\n`));
    expect(p.analysis.queries['requests']).toContain('http_requests_total');
    expect(p.analysis.selectors.canary).toBe('service="{{canaryService}}"');
  });

  it.each([
    ['a weight that is not a number', `${HEAD}spec:\n  steps:\n    - { weight: 10, duration: 5m }\n    - { weight: 20, duration: 5m }\n    - { weight: fifty, duration: 5m }\n`, 'spec.steps[2].weight: expected a number from 1 to 100, got "fifty"'],
    ['a weight above 100', `${HEAD}spec:\n  steps:\n    - { weight: 150, duration: 5m }\n`, 'spec.steps[0].weight: expected a number from 1 to 100, got 150'],
    ['a bad duration', `${HEAD}spec:\n  steps:\n    - { weight: 10, duration: 15 minutes }\n`, 'spec.steps[0].duration: expected how long to hold this weight like "30s", "1m" or "1h30m", got "15 minutes"'],
    ['weights that do not increase', `${HEAD}spec:\n  steps:\n    - { weight: 30, duration: 5m }\n    - { weight: 20, duration: 5m }\n`, "spec.steps[1].weight: expected more than the previous step's 30, got 20"],
    ['100 before the last step', `${HEAD}spec:\n  steps:\n    - { weight: 100, duration: 5m }\n    - { weight: 100, duration: 5m }\n`, 'spec.steps[0].weight: 100 is only allowed as the last step'],
    ['a step shorter than the interval', `${HEAD}spec:\n  interval: 2m\n  analysis: { window: 1m }\n  steps:\n    - { weight: 10, duration: 1m }\n`, 'spec.steps[0].duration: expected at least the check interval (2m), got 1m'],
    ['a window longer than a step', `${HEAD}spec:\n  analysis:\n    window: 20m\n`, 'spec.analysis.window: expected no longer than the shortest step (10m), got 20m'],
    ['an unknown field', `${HEAD}spec:\n  stepz: []\n`, 'spec: unknown field "stepz"'],
    ['a wrong apiVersion', 'apiVersion: v2\nkind: RolloutPolicy\nspec: {}\n', 'apiVersion: expected "canary/v1", got "v2"'],
    ['a wrong kind', 'apiVersion: canary/v1\nkind: Rollout\nspec: {}\n', 'kind: expected "RolloutPolicy", got "Rollout"'],
    ['an error limit over 100%', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: e, type: error-rate, max: 150% }\n`, 'spec.analysis.metrics[0].max: expected a percentage like "5%" or a fraction from 0 to 1, got "150%"'],
    ['an error limit given as a whole percent number', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: e, type: error-rate, max: 5 }\n`, 'spec.analysis.metrics[0].max: expected a percentage like "5%" or a fraction from 0 to 1, got 5'],
    ['an unknown metric type', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: e, type: error-rat }\n`, 'spec.analysis.metrics[0].type: expected type "error-rate", "latency" or "query", got "error-rat"'],
    ['a latency limit that is not a duration', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: l, type: latency, max: fast }\n`, 'spec.analysis.metrics[0].max: expected a duration like "2s" or "250ms", or a number of seconds, got "fast"'],
    ['a quantile of 95', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: l, type: latency, quantile: 95, max: 2s }\n`, 'spec.analysis.metrics[0].quantile: expected a quantile between 0 and 1 like 0.95, got 95'],
    ['a ratio below 1', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: l, type: latency, maxRatio: 0.5 }\n`, 'spec.analysis.metrics[0].maxRatio: expected a ratio to stable of at least 1, got 0.5'],
    ['a critical metric without a limit', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: e, type: error-rate }\n`, 'spec.analysis.metrics[0]: a critical metric needs a threshold ("max", "maxRatio" or "maxIncrease")'],
    ['two metrics with one name', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: e, type: error-rate, max: 5% }\n      - { name: e, type: error-rate, max: 6% }\n`, 'spec.analysis.metrics[1].name: "e" is used twice'],
    ['an unknown query name', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: q, type: query, query: memroy }\n`, 'spec.analysis.metrics[0].query: expected a PromQL template or one of "requests", "countingGaps", "errors", "latency", "latencyBuckets", "memory", "cpu", got "memroy"'],
    ['an unknown placeholder', `${HEAD}spec:\n  analysis:\n    queries:\n      requests: 'sum(x{ns="{{namepsace}}"})'\n`, 'spec.analysis.queries.requests: unknown placeholder {{namepsace}}'],
    ['an unknown judge', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: e, type: error-rate, max: 5%, judge: bayes }\n`, 'spec.analysis.metrics[0].judge: expected one of "threshold", "sequential", got "bayes"'],
    ['an unknown preset', `${HEAD}spec:\n  analysis:\n    preset: istio\n`, 'spec.analysis.preset: expected one of "ingress-nginx", "app-metrics", "envoy-gateway", "traefik", got "istio"'],
    ['a negative minimum', `${HEAD}spec:\n  analysis:\n    minRequests: -3\n`, 'spec.analysis.minRequests: expected a whole number of at least 0, got -3'],
    ['a zero failure limit', `${HEAD}spec:\n  analysis:\n    failureLimit: 0\n`, 'spec.analysis.failureLimit: expected a whole number from 1 to 1000, got 0'],
    ['a bad counting mode', `${HEAD}spec:\n  analysis:\n    countFailures: cumulative\n`, 'spec.analysis.countFailures: expected one of "consecutive", "total", got "cumulative"'],
    ['a bad target name', `${HEAD}spec:\n  target:\n    canaryService: Checkout_Canary\n`, 'spec.target.canaryService: expected a Kubernetes name (lower-case letters, digits, "-" and "."), got "Checkout_Canary"'],
    ['a token written inline', `${HEAD}spec:\n  prometheus:\n    bearerToken: { env: TOKEN, file: /t }\n`, 'spec.prometheus.bearerToken: expected exactly one of "env" or "file" (secrets are never written in the policy itself)'],
    ['a token value in the policy, without echoing it', `${HEAD}spec:\n  prometheus:\n    bearerToken: abc123\n`, 'spec.prometheus.bearerToken: expected { env: VARIABLE } or { file: PATH } (the value is not shown'],
    ['a list given as a number', `${HEAD}spec:\n  steps: 5\n`, 'spec.steps: expected a list, got 5'],
    ['a non-boolean switch', `${HEAD}spec:\n  prometheus:\n    insecureSkipVerify: "yes"\n`, 'spec.prometheus.insecureSkipVerify: expected true or false, got "yes"'],
    ['an empty step list', `${HEAD}spec:\n  steps: []\n`, 'spec.steps: expected at least one step'],
    ['only advisory metrics', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: memory, type: query, query: memory, unit: bytes }\n`, 'spec.analysis.metrics: expected at least one critical metric'],
    ['a 100% step judged only against stable', `${HEAD}spec:\n  steps:\n    - { weight: 50, duration: 5m }\n    - { weight: 100, duration: 5m }\n  analysis:\n    metrics:\n      - { name: e, type: error-rate, judge: threshold, maxIncrease: 3% }\n`, 'spec.steps[1]: a 100% step needs a critical metric with an absolute "max"'],
    ['a sequential error rate without a margin', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: e, type: error-rate, judge: sequential, max: 5% }\n`, 'spec.analysis.metrics[0].maxIncrease: the sequential judge needs the margin above stable'],
    ['a sequential latency ratio of 1', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: l, type: latency, judge: sequential, maxRatio: 1 }\n`, 'spec.analysis.metrics[0].maxRatio: the sequential judge needs a ratio to stable above 1'],
    ['a window longer than the interval with sequential judges', `${HEAD}spec:\n  analysis:\n    window: 2m\n`, 'spec.analysis.window: with sequential judges, expected no longer than the check interval (1m)'],
    ['a relative query metric that cannot tell canary from stable', `${HEAD}spec:\n  analysis:\n    metrics:\n      - { name: e, type: error-rate, judge: threshold, max: 5% }\n      - { name: r, type: query, query: 'sum(kube_pod_container_status_restarts_total{namespace="{{namespace}}"})', maxRatio: 1.2 }\n`, 'spec.analysis.metrics[1].query: a critical or relative metric must tell canary from stable'],
    ['{{quantile}} outside the latency query', `${HEAD}spec:\n  analysis:\n    queries:\n      requests: 'sum(x{q="{{quantile}}",{{selector}}})'\n`, 'spec.analysis.queries.requests: {{quantile}} is only filled in the "latency" query'],
    ['a placeholder with a typo in snake case', `${HEAD}spec:\n  analysis:\n    queries:\n      memory: 'sum(x{pod=~"{{pod_regex}}"})'\n`, 'spec.analysis.queries.memory: unknown placeholder {{pod_regex}}'],
    ['a window placeholder in a selector', `${HEAD}spec:\n  analysis:\n    selectors: { canary: 'w="{{window}}"', stable: 'canary=""' }\n`, 'spec.analysis.selectors.canary: {{window}} cannot be used in a selector'],
    ['a Prometheus URL without a scheme', `${HEAD}spec:\n  prometheus:\n    url: prometheus.monitoring:9090\n`, 'spec.prometheus.url: expected an http:// or https:// URL'],
    ['credentials in the Prometheus URL', `${HEAD}spec:\n  prometheus:\n    url: https://admin:hunter2@prom.example.com\n`, 'spec.prometheus.url: expected no user:password@ or ?query in the URL'],
    ['an Authorization header in the policy', `${HEAD}spec:\n  prometheus:\n    headers: { Authorization: Bearer abc }\n`, 'spec.prometheus.headers.Authorization: credentials never go in the policy'],
  ])('rejects %s, naming the path and what was expected', (_what, text, expected) => {
    expect(problems(text).some((p) => p.startsWith(expected))).toBe(true);
  });

  it.each([
    `${HEAD}spec:\n  prometheus:\n    bearerToken: s3cr3t-t0ken\n`,
    `${HEAD}spec:\n  prometheus:\n    basicAuth: "admin:s3cr3t-t0ken"\n`,
    `${HEAD}spec:\n  prometheus: "https://admin:s3cr3t-t0ken@prom"\n`,
    `${HEAD}spec:\n  prometheus:\n    url: https://admin:s3cr3t-t0ken@prom.example.com\n`,
    `${HEAD}spec:\n  prometheus:\n    url: "https://prom.example.com/?access_token=s3cr3t-t0ken"\n`,
  ])('never echoes a secret written into the policy: %s', (text) => {
    expect(problems(text).join('\n')).not.toContain('s3cr3t-t0ken');
  });

  it('lists every problem at once, not one per run', () => {
    const found = problems(`${HEAD}spec:\n  interval: soon\n  analysis:\n    minRequests: many\n`);
    expect(found).toContain('spec.interval: expected a check interval like "30s", "1m" or "1h30m", got "soon"');
    expect(found).toContain('spec.analysis.minRequests: expected a whole number of at least 0, got "many"');
  });

  it('rejects malformed YAML with the line', () => {
    const found = problems(`${HEAD}spec:\n  steps: [\n`);
    expect(found[0]).toMatch(/is not valid YAML/);
    expect(found[1]).toMatch(/line|Flow sequence|end/i);
  });

  it('names a missing policy file', () => {
    expect(() => loadPolicy(join(dir, 'nope.yaml'))).toThrow(/policy file .*nope\.yaml does not exist/);
  });

  it('rejects a document that is not a mapping', () => {
    expect(problems('- just\n- a list\n')[0]).toMatch(/expected a YAML mapping with apiVersion, kind and spec/);
  });
});

describe('units', () => {
  it('parses durations, fractions and seconds the way the policy docs say', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('15')).toBeNull();
    expect(parseFraction('5%')).toBe(0.05);
    expect(parseFraction(0.05)).toBe(0.05);
    expect(parseFraction(5)).toBeNull();
    expect(parseSeconds('2s')).toBe(2);
    expect(parseSeconds(0.5)).toBe(0.5);
    expect(parseSeconds('0s')).toBeNull();
  });
});

describe('retry deadlines', () => {
  it('one Kubernetes API call ends within 30 s by default (10 s per request), and the policy can change both deadlines', () => {
    const defaults = loadPolicy();
    expect(defaults.kubernetes).toMatchObject({ timeoutMs: 10_000, deadlineMs: 30_000, attempts: 10 });
    expect(defaults.prometheus.deadlineMs).toBeUndefined();
    const p = loadPolicy(file(`${HEAD}spec:\n  kubernetes:\n    deadline: 45s\n  prometheus:\n    deadline: 20s\n`));
    expect(p.kubernetes.deadlineMs).toBe(45_000);
    expect(p.prometheus.deadlineMs).toBe(20_000);
    expect(problems(`${HEAD}spec:\n  kubernetes:\n    deadline: soon\n`).join('\n')).toContain('spec.kubernetes.deadline');
  });
});

describe('header values: secrets unless marked public, from the policy, env or a file', () => {
  it('resolves every form, with public false unless the policy says so', () => {
    const policy = loadPolicy(
      file(
        `${HEAD}spec:\n  prometheus:\n    headers:\n      X-Scope-OrgID: { value: shop, public: true }\n      X-Api-Key: { env: PROM_KEY }\n      X-File-Key: { file: /run/key }\n      X-Plain: literal-value\n`,
      ),
    );
    expect(policy.prometheus.headers).toEqual({
      'X-Scope-OrgID': { value: 'shop', public: true },
      'X-Api-Key': { env: 'PROM_KEY', public: false },
      'X-File-Key': { file: '/run/key', public: false },
      'X-Plain': { value: 'literal-value', public: false },
    });
  });

  it('an Authorization header may come from env or a file, never as a literal', () => {
    expect(loadPolicy(file(`${HEAD}spec:\n  prometheus:\n    headers: { Authorization: { env: PROM_AUTH } }\n`)).prometheus.headers['Authorization']).toEqual({ env: 'PROM_AUTH', public: false });
  });

  it('a malformed header value is named with what was expected, never quoted', () => {
    const secret = 'pasted-Secret/9f8e7d';
    for (const value of [`["${secret}"]`, `{ value: "${secret}", env: X }`, `{ token: "${secret}" }`, `{ value: "${secret}", public: "yes" }`]) {
      const found = problems(`${HEAD}spec:\n  prometheus:\n    headers:\n      X-Api-Key: ${value}\n  incidents:\n    - type: webhook\n      url: https://hooks.example.com/x\n      headers:\n        X-Key: ${value}\n`);
      expect(found.join('\n')).toContain('spec.prometheus.headers.X-Api-Key: expected a string, or { value: TEXT } / { env: VARIABLE } / { file: PATH }');
      expect(found.join('\n')).toContain('spec.incidents[0].headers.X-Key: expected a string');
      expect(found.join('\n')).not.toContain(secret);
    }
  });

  it('a Prometheus URL or a sink URL holding a pasted secret is not quoted in the error', () => {
    const secret = 'glpat-Pasted/Secret+123';
    const found = problems(`${HEAD}spec:\n  prometheus:\n    url: 42\n  dashboardUrl: "${secret}"\n  incidents:\n    - type: pagerduty\n      routingKey: { env: K }\n      url: "${secret}"\n`).join('\n');
    expect(found).toContain('spec.prometheus.url: expected an http:// or https:// URL');
    expect(found).toContain('spec.dashboardUrl: expected a URL template');
    expect(found).toContain('spec.incidents[0].url: expected the Events API v2 URL');
    expect(found).not.toContain(secret);
  });
});

describe('resolving header values', () => {
  it('registers secret values (short ones beside their name), reads env and files, and leaves public ones readable', async () => {
    const { resolveHeaders } = await import('../../src/policy/headers.js');
    const { clearRegisteredSecrets, redact } = await import('../../src/secrets.js');
    const keyFile = join(dir, 'header-key');
    writeFileSync(keyFile, 'file-secret/value-77\n');
    process.env['CANARY_TEST_HEADER'] = 'env-secret/value-42';
    process.env['CANARY_TEST_TENANT'] = 'shop';
    try {
      const headers = resolveHeaders(
        {
          'X-Env': { env: 'CANARY_TEST_HEADER', public: false },
          'X-File': { file: keyFile, public: false },
          'X-Tenant': { env: 'CANARY_TEST_TENANT', public: true },
          'X-Org': { value: 'acme', public: false },
        },
        'spec.prometheus.headers',
      );
      expect(headers).toEqual({ 'X-Env': 'env-secret/value-42', 'X-File': 'file-secret/value-77', 'X-Tenant': 'shop', 'X-Org': 'acme' });
      expect(redact('env-secret/value-42 file-secret%2Fvalue-77 X-Tenant: shop X-Org: acme; acme corp')).toBe('[REDACTED] [REDACTED] X-Tenant: shop X-Org: [REDACTED]; acme corp');
      expect(() => resolveHeaders({ 'X-Missing': { env: 'CANARY_TEST_NOT_SET', public: false } }, 'spec.prometheus.headers')).toThrow(
        'spec.prometheus.headers.X-Missing: environment variable CANARY_TEST_NOT_SET is not set',
      );
    } finally {
      delete process.env['CANARY_TEST_HEADER'];
      delete process.env['CANARY_TEST_TENANT'];
      clearRegisteredSecrets();
    }
  });
});
