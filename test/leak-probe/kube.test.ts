import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeconfigYaml } from '../support/fake-kube/kubeconfig.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/server.js';
import { seedCheckout } from '../support/fake-kube/seed.js';
import { waitFor } from '../support/live-harness.js';
import { startEchoServer, type EchoServer } from './support/echo-server.js';
import { describeLeaks, findLeaks, leaksOf, probeDir, runAll, runProbe, SECRETS, writeProbeFile, type ProbeRun } from './support/probe.js';
import { sinkEnv, sinkYaml } from './support/sinks.js';

// Class 5 of issue 17 and the cluster tier: the kubeconfig's token against an API front-end that
// echoes the request (a proxy or gateway in front of the API server), and a live rollout on the
// fake API server with every secret configured, after which everything the cluster stored — the
// record ConfigMap, Events, the canary Ingress's annotations, the Lease — and every output of
// deploy, status and rollback is searched for every form of every secret.

let echo: EchoServer;
let fake: FakeKube;
beforeAll(async () => {
  echo = await startEchoServer();
  fake = await startFakeKube({ controllerDelayMs: 20, token: SECRETS.kubeToken });
});
afterAll(async () => {
  await Promise.allSettled([echo?.close(), fake?.stop()]);
});

function kubeconfigFor(server: string, name: string): string {
  return writeProbeFile(`kubeconfig-${name}`, kubeconfigYaml({ server, token: SECRETS.kubeToken, namespace: 'shop' }));
}

function policy(name: string, lines: string[]): string {
  return writeProbeFile(
    `${name}.yaml`,
    [
      'apiVersion: canary/v1',
      'kind: RolloutPolicy',
      'spec:',
      '  interval: 250ms',
      '  steps:',
      '    - { weight: 10, duration: 10m }',
      '    - { weight: 50, duration: 10m }',
      '  analysis:',
      '    window: 250ms',
      '    minRequests: 1',
      '    evaluationDelay: 0s',
      '    inconclusiveLimit: 1',
      '    metrics:',
      '      - { name: error-rate, type: error-rate, judge: threshold, critical: true, max: 5% }',
      '  kubernetes:',
      '    attempts: 2',
      '    timeout: 20s',
      '    deadline: 5s',
      '    readyTimeout: 10s',
      '    pollInterval: 100ms',
      ...lines,
      '',
    ].join('\n'),
  );
}

describe('the kubeconfig token against an API front-end that echoes the request', () => {
  it('class 5: status, rollback and deploy turn client errors into our messages without the token', async () => {
    const p = policy('kube-front', ['  prometheus:', `    url: ${echo.url}/s200p`, '    retries: 0']);
    // Every status the client maps differently; status and rollback at each, deploy at a few.
    const statuses = ['404k', '404t', '403k', '401j', '422k', '400t', '409k', '500k'];
    const probes = statuses.flatMap((s, i) => {
      const env = { KUBECONFIG: kubeconfigFor(`${echo.url}/s${s}`, s) };
      return [
        // status keeps retrying a 5xx for its own 30 s deadline: the 5xx path is probed by rollback and deploy.
        ...(s === '500k' ? [] : [() => runProbe(['status', 'checkout', '-n', 'shop', '-p', p, ...(i % 2 ? ['-o', 'json'] : [])], env)]),
        () => runProbe(['rollback', 'checkout', '-n', 'shop', '--reason', 'probe', '--no-incident', '--timeout', '2s', '-p', p, ...(i % 2 ? [] : ['-o', 'json'])], env),
        ...(['404k', '403k', '500k'].includes(s) ? [() => runProbe(['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '-p', p, '--no-incident'], env)] : []),
      ];
    });
    const runs = await runAll(probes);
    for (const run of runs) expect(run.code, run.outputs['stdout'] + run.outputs['stderr']).not.toBe(0);
    expect(echo.seen.some((r) => r.includes(`Bearer ${SECRETS.kubeToken}`))).toBe(true);
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });
});

describe('the live preflight against an echoing Prometheus', () => {
  it('class 3: a token with "/" echoed as "\\/" by the clock check never reaches the preflight message', async () => {
    seedCheckout(fake, { namespace: 'shop', name: 'checkout' });
    const runs = await runAll(
      ['200j', '500j', '400p', '401j'].map((status) => {
        const p = policy(`preflight-${status}`, ['  prometheus:', `    url: ${echo.url}/s${status}`, '    retries: 0', '    bearerToken: { env: PROBE_BEARER }', '    headers:', `      X-Api-Key: "${SECRETS.promHeader}"`]);
        return () => runProbe(['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '-p', p, '--no-incident'], { KUBECONFIG: fake.kubeconfigPath, PROBE_BEARER: SECRETS.promBearer });
      }),
    );
    expect(describeLeaks(leaksOf(runs))).toBe('');
    // Refused before anything changed, saying why: the preflight met the echo.
    for (const run of runs) expect(run.code, run.outputs.stdout + run.outputs.stderr).not.toBe(0);
    expect(echo.seen.some((r) => r.includes(`Bearer ${SECRETS.promBearer}`))).toBe(true);
  });
});

describe('a live rollout on the fake API server with every secret configured', () => {
  it('rolls back on an echoing Prometheus; the cluster and every output hold no secret', async () => {
    seedCheckout(fake, { namespace: 'shop', name: 'checkout' });
    const statuses = { webhook: '500j', slack: '401t', pagerduty: '400j', github: '403j' };
    const p = policy('live', [
      '  prometheus:',
      `    url: ${echo.url}/s200p`,
      '    retries: 0',
      '    timeout: 20s',
      `    basicAuth: { username: ${SECRETS.promBasicUser}, password: { env: PROBE_BASIC } }`,
      '    headers:',
      `      X-Api-Key: "${SECRETS.promHeader}"`,
      '  incidents:',
      ...sinkYaml(echo.url, statuses),
    ]);
    const env = { KUBECONFIG: fake.kubeconfigPath, PROBE_BASIC: SECRETS.promBasicPass, ...sinkEnv(echo.url, statuses.slack) };
    const record = join(probeDir, 'live-recording.json');
    const runs: ProbeRun[] = [];
    // Healthy until the canary takes traffic, then every query meets the echo.
    echo.healthyPrometheus = true;
    const deploy = runProbe(['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '-p', p, '--record', record], env, [record]);
    await waitFor('the canary at 10%', () => fake.get('Ingress', 'shop', 'checkout-canary')?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight'] === '10');
    echo.healthyPrometheus = false;
    runs.push(await deploy);
    // The deploy met the echo (Prometheus answered every real query with an error quoting the request).
    expect(runs[0]!.code, runs[0]!.outputs['stdout'] + runs[0]!.outputs['stderr']).not.toBe(0);
    expect(fake.get('ConfigMap', 'shop', 'checkout-canary-rollout'), runs[0]!.outputs['stdout'] + runs[0]!.outputs['stderr']).toBeDefined();
    runs.push(
      ...(await runAll([
        () => runProbe(['status', 'checkout', '-n', 'shop'], env),
        () => runProbe(['status', 'checkout', '-n', 'shop', '-o', 'json'], env),
      ])),
    );
    runs.push(await runProbe(['rollback', 'checkout', '-n', 'shop', '--reason', 'probe', '-p', p], env));
    runs.push(await runProbe(['rollback', 'checkout', '-n', 'shop', '--reason', 'probe again', '-p', p, '-o', 'json'], env));

    const stored: Record<string, string> = {};
    for (const kind of ['ConfigMap', 'Event', 'Ingress', 'Lease', 'Deployment']) {
      for (const obj of fake.list(kind, 'shop')) stored[`${kind} ${obj.metadata?.name ?? ''}`] = JSON.stringify(obj);
    }
    expect(Object.keys(stored).some((k) => k.startsWith('Event '))).toBe(true);
    const leaks = [...leaksOf(runs), ...findLeaks(stored)];
    expect(describeLeaks(leaks)).toBe('');
    // The echo reached what the cluster stored (the record quotes the failed query): redaction, not silence, kept it clean.
    expect(stored['ConfigMap checkout-canary-rollout']).toContain('[REDACTED]');
  });
});
