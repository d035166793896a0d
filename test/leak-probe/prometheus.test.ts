import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from './support/echo-server.js';
import { describeLeaks, leaksOf, probeDir, runAll, runProbe, SECRETS, writeProbeFile, type ProbeRun } from './support/probe.js';

// Classes 1, 2, 3 and 7 of issue 17: Prometheus credentials in every place they can be given
// (custom headers, basic auth, bearer token, URL user info and query, the proxy's user info),
// against a Prometheus that answers every status the client handles with the request echoed back.
// Every output of `deploy --dry-run` and `backtest` — stdout, stderr, -o json, the job summary,
// step outputs, the --record file — is searched for every form of every secret.

let echo: EchoServer;
beforeAll(async () => {
  echo = await startEchoServer();
});
afterAll(async () => {
  await echo?.close();
});

/** Statuses the client treats differently, each with a shape that echoes the request. */
const STATUSES = ['500p', '503t', '429j', '401j', '403t', '404t', '400p', '422p', '302t', '200j', '200t'];

function policy(name: string, prometheus: string[]): string {
  return writeProbeFile(
    `${name}.yaml`,
    [
      'apiVersion: canary/v1',
      'kind: RolloutPolicy',
      'spec:',
      '  interval: 1s',
      '  steps:',
      '    - { weight: 10, duration: 1s }',
      '    - { weight: 50, duration: 1s }',
      '  analysis:',
      '    window: 1s',
      '    evaluationDelay: 0s',
      '    inconclusiveLimit: 1',
      '    metrics:',
      '      - { name: error-rate, type: error-rate, judge: threshold, critical: true, max: 5% }',
      '  prometheus:',
      '    retries: 0',
      '    timeout: 10s',
      ...prometheus.map((l) => `    ${l}`),
      '',
    ].join('\n'),
  );
}

const BACKTEST = (policyPath: string, extra: string[]) => ['backtest', 'checkout', '--from', '2026-01-15T10:00:00Z', '-p', policyPath, ...extra];
const DRY_RUN = (policyPath: string, extra: string[]) => ['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run', '-p', policyPath, ...extra];

let recordings = 0;
/** backtest (text and -o json, with --record) at every status; deploy --dry-run at two. */
function probesFor(policyPath: string, env: NodeJS.ProcessEnv, urlFor: (status: string) => string[]): (() => Promise<ProbeRun>)[] {
  const probes: (() => Promise<ProbeRun>)[] = [];
  STATUSES.forEach((status, i) => {
    const record = join(probeDir, `recording-${++recordings}.json`);
    const output = i % 2 === 0 ? [] : ['-o', 'json'];
    probes.push(() => runProbe(BACKTEST(policyPath, [...urlFor(status), '--record', record, ...output]), env, [record]));
  });
  for (const status of ['500p', '401j']) {
    const record = join(probeDir, `recording-${++recordings}.json`);
    probes.push(() => runProbe(DRY_RUN(policyPath, [...urlFor(status), '--record', record]), env, [record]));
  }
  return probes;
}

function expectEchoed(runs: readonly ProbeRun[]): void {
  // The probe only proves something if the echo reached the process: every run got an answer.
  for (const run of runs) expect(run.code, run.outputs['stdout'] + run.outputs['stderr']).not.toBe(0);
  expect(echo.seen.length).toBeGreaterThanOrEqual(runs.length);
}

describe('Prometheus credentials never leave, whatever Prometheus echoes', () => {
  it('class 1: custom header values (spec.prometheus.headers) are redacted everywhere', async () => {
    const p = policy('headers', [`url: ${echo.url}/s500p`, 'headers:', `  X-Api-Key: "${SECRETS.promHeader}"`]);
    const runs = await runAll(probesFor(p, {}, (s) => ['--prometheus', `${echo.url}/s${s}`]));
    expectEchoed(runs);
    expect(echo.seen.some((r) => r.includes(SECRETS.promHeader))).toBe(true);
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });

  it('class 1: a header value read from env is sent and redacted; a public header is shown', async () => {
    const p = policy('header-env', [`url: ${echo.url}/s500p`, 'headers:', '  X-Api-Key: { env: PROBE_HEADER }', '  X-Scope-OrgID: { value: shop-tenant, public: true }']);
    const runs = await runAll([() => runProbe(BACKTEST(p, []), { PROBE_HEADER: SECRETS.promHeaderEnv })]);
    expectEchoed(runs);
    expect(echo.seen.some((r) => r.includes(SECRETS.promHeaderEnv))).toBe(true);
    expect(runs[0]!.outputs['stdout']).toContain('X-Scope-OrgID: shop-tenant');
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });

  it('class 2: basic auth in its wire form (Authorization: Basic base64(user:password)) is redacted', async () => {
    const p = policy('basic', [`url: ${echo.url}/s500p`, `basicAuth: { username: ${SECRETS.promBasicUser}, password: { env: PROBE_BASIC } }`]);
    const runs = await runAll(probesFor(p, { PROBE_BASIC: SECRETS.promBasicPass }, (s) => ['--prometheus', `${echo.url}/s${s}`]));
    expectEchoed(runs);
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });

  it('class 2: user:password@ in --prometheus and ?access_token= are redacted in every form', async () => {
    const p = policy('url-creds', []);
    const url = (s: string) => `http://${SECRETS.promUrlUser}:${encodeURIComponent(SECRETS.promUrlPass)}@127.0.0.1:${echo.port}/s${s}?access_token=${encodeURIComponent(SECRETS.promQueryToken)}`;
    const runs = await runAll(probesFor(p, {}, (s) => ['--prometheus', url(s)]));
    expectEchoed(runs);
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });

  it('class 2: HTTP_PROXY=http://user:password@… never shows its Proxy-Authorization', async () => {
    const p = policy('proxied', []);
    const env = { HTTP_PROXY: `http://${SECRETS.proxyUser}:${encodeURIComponent(SECRETS.proxyPass)}@127.0.0.1:${echo.port}` };
    // The proxy (the echo server) answers for prometheus.probe.invalid, a host that does not exist.
    const runs = await runAll(probesFor(p, env, (s) => ['--prometheus', `http://prometheus.probe.invalid:9090/s${s}`]).slice(0, 6));
    expectEchoed(runs);
    expect(echo.seen.some((r) => r.includes('Proxy-Authorization: Basic'))).toBe(true);
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });

  it('class 3: a bearer token with "/" echoed in JSON as "\\/" is redacted after JSON.parse decodes it', async () => {
    const p = policy('bearer', [`url: ${echo.url}/s500p`, 'bearerToken: { env: PROBE_BEARER }']);
    const runs = await runAll(probesFor(p, { PROBE_BEARER: SECRETS.promBearer }, (s) => ['--prometheus', `${echo.url}/s${s}`]));
    expectEchoed(runs);
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });

  it('class 7: a malformed Prometheus URL with "/" in its password is never printed whole', async () => {
    const p = policy('malformed', []);
    const bad = [
      `http://${SECRETS.promUrlUser}:${SECRETS.promUrlPass}@127.0.0.1:${echo.port}/s500p`,
      `http://${SECRETS.promUrlUser}:${SECRETS.promUrlPass}@prometheus:9090`,
      `htp:/${SECRETS.promUrlUser}:${SECRETS.promUrlPass}@prometheus`,
    ];
    const runs = await runAll(bad.flatMap((url) => [() => runProbe(BACKTEST(p, ['--prometheus', url]), {}), () => runProbe(DRY_RUN(p, ['--prometheus', url, '-o', 'json']), {})]));
    for (const run of runs) expect(run.code).not.toBe(0);
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });
});
