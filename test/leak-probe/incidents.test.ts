import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/run-cli.js';
import { startEchoServer, type EchoServer } from './support/echo-server.js';
import { describeLeaks, leaksOf, runAll, runProbe, writeProbeFile } from './support/probe.js';
import { sinkEnv, sinkYaml } from './support/sinks.js';

// Class 4 of issue 17: incident sinks that answer an error with the request echoed back (webhook
// headers, the webhook URL's token, Slack's URL, the PagerDuty key, the GitHub token). A dry-run
// replay of a regression delivers to every sink; stdout, stderr, -o json, the job summary and the
// step outputs must hold none of their secrets.

let echo: EchoServer;
beforeAll(async () => {
  echo = await startEchoServer();
});
afterAll(async () => {
  await echo?.close();
});

const RECORDING = join(REPO, 'examples', 'recordings', 'error-regression.json');

describe('incident sinks that echo the request', () => {
  it('class 4: webhook headers and every sink secret stay out of every output', async () => {
    const rounds = [
      { webhook: '500j', slack: '500t', pagerduty: '400j', github: '401j' },
      { webhook: '401t', slack: '403j', pagerduty: '429j', github: '404j' },
      { webhook: '422j', slack: '302t', pagerduty: '500t', github: '422j' },
    ];
    const probes = rounds.flatMap((statuses, i) => {
      const policy = writeProbeFile(
        `sinks-${i}.yaml`,
        ['apiVersion: canary/v1', 'kind: RolloutPolicy', 'spec:', '  incidents:', ...sinkYaml(echo.url, statuses), ''].join('\n'),
      );
      const args = ['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run', '--replay', RECORDING, '-p', policy];
      return [() => runProbe(args, sinkEnv(echo.url, statuses.slack)), () => runProbe([...args, '-o', 'json'], sinkEnv(echo.url, statuses.slack))];
    });
    const runs = await runAll(probes);
    for (const run of runs) expect(run.code, run.outputs['stdout'] + run.outputs['stderr']).toBe(3);
    // Each sink was reached and echoed its secrets back.
    expect(echo.seen.some((r) => r.includes('/hook?token='))).toBe(true);
    expect(echo.seen.some((r) => r.includes('/services/T000/B000/'))).toBe(true);
    expect(echo.seen.some((r) => r.includes('/v2/enqueue'))).toBe(true);
    expect(echo.seen.some((r) => r.includes('/repos/acme/shop/issues'))).toBe(true);
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });
});
