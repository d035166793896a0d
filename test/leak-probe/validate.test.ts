import { describe, expect, it } from 'vitest';
import { kubeconfigYaml } from '../support/fake-kube/kubeconfig.js';
import { describeLeaks, leaksOf, runAll, runProbe, SECRETS, writeProbeFile } from './support/probe.js';

// Class 6 of issue 17: `canary validate -o json` prints the policy with its secrets replaced, and
// an error about a value in a field that could hold a secret names the field and what was
// expected, never the value (a token pasted into the wrong field must not land in the CI log).

const HEAD = ['apiVersion: canary/v1', 'kind: RolloutPolicy', 'spec:'];
const write = (name: string, lines: string[]) => writeProbeFile(`${name}.yaml`, [...HEAD, ...lines, ''].join('\n'));

describe('canary validate', () => {
  it('class 6: -o json redacts header values, webhook URL tokens and webhook auth headers', async () => {
    const policy = write('valid-with-secrets', [
      '  prometheus:',
      '    url: http://prometheus.monitoring:9090',
      '    headers:',
      `      X-Api-Key: "${SECRETS.promHeader}"`,
      '  incidents:',
      '    - type: webhook',
      `      url: "https://hooks.example.com/canary?token=${SECRETS.webhookQuery}"`,
      '      headers:',
      `        Authorization: "Bearer ${SECRETS.webhookAuth}"`,
      `        X-Api-Key: "${SECRETS.webhookHeader}"`,
    ]);
    const runs = await runAll([() => runProbe(['validate', policy, '-o', 'json'], {}), () => runProbe(['validate', policy], {})]);
    for (const run of runs) expect(run.code, run.outputs['stdout'] + run.outputs['stderr']).toBe(0);
    const json = JSON.parse(runs[0]!.outputs['stdout']!) as { valid: boolean; policy: { prometheus: { headers: Record<string, unknown> } } };
    expect(json.valid).toBe(true);
    // The header is still named, so the operator can see what is sent.
    expect(Object.keys(json.policy.prometheus.headers)).toEqual(['X-Api-Key']);
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });

  it('class 6: -o json redacts a hook\'s env values; a secret pasted as a hook command is not quoted back', async () => {
    const policy = write('hook-env', ['  hooks:', `    - { name: notify, at: post-rollout, command: [./notify.sh], env: { TOKEN: "${SECRETS.webhookHeader}" } }`]);
    const wrong = write('hook-command', ['  hooks:', `    - { name: notify, at: post-rollout, command: "${SECRETS.githubToken}" }`]);
    const runs = await runAll([() => runProbe(['validate', policy, '-o', 'json'], {}), () => runProbe(['validate', policy], {}), () => runProbe(['validate', wrong], {})]);
    expect(runs[0]!.code, runs[0]!.outputs['stdout']).toBe(0);
    expect(runs[2]!.code).toBe(2);
    expect(runs[2]!.outputs['stderr'] ?? '').toContain('spec.hooks[0].command: expected a list');
    expect(describeLeaks(leaksOf(runs))).toBe('');
  });

  it('class 6: a secret pasted into the wrong field is never quoted back in the error', async () => {
    const secret = SECRETS.pagerdutyKey;
    const wrong: [string, string[]][] = [
      ['pagerduty-url', ['  incidents:', '    - type: pagerduty', '      routingKey: { env: X }', `      url: "${secret}"`]],
      ['github-apiurl', ['  incidents:', '    - type: github-issue', '      repository: acme/shop', `      apiUrl: "${secret}"`]],
      ['webhook-url', ['  incidents:', '    - type: webhook', `      url: "${secret}"`]],
      ['severity', ['  incidents:', '    - type: pagerduty', '      routingKey: { env: X }', `      severity: "${secret}"`]],
      ['dashboard', [`  dashboardUrl: "${secret}"`]],
      ['list-header', ['  prometheus:', '    headers:', `      X-Api-Key: ["${secret}"]`]],
      ['webhook-list-header', ['  incidents:', '    - type: webhook', '      url: https://hooks.example.com/x', '      headers:', `        X-Api-Key: ["${secret}"]`]],
      ['prometheus-url', ['  prometheus:', `    url: "${secret}"`]],
      ['repository', ['  incidents:', '    - type: github-issue', `      repository: "${secret}"`]],
    ];
    const runs = await runAll(wrong.flatMap(([name, lines]) => [() => runProbe(['validate', write(name, lines)], {}), () => runProbe(['validate', write(`${name}-json`, lines), '-o', 'json'], {})]));
    for (const run of runs) {
      const all = run.outputs['stdout']! + run.outputs['stderr']!;
      expect(run.code, all).toBe(2);
      // The error still names the field.
      expect(all).toMatch(/spec\.(incidents\[0\]|dashboardUrl|prometheus)/);
    }
    expect(describeLeaks(leaksOf(runs, ['pagerdutyKey']))).toBe('');
  });
});

describe('a kubeconfig with a secret pasted into server:', () => {
  it('class 6: status and rollback name the field, never the value', async () => {
    const kubeconfig = writeProbeFile('kubeconfig-pasted', kubeconfigYaml({ server: SECRETS.kubeToken, token: SECRETS.kubeToken }));
    const env = { KUBECONFIG: kubeconfig };
    const runs = await runAll([
      () => runProbe(['status', 'checkout', '-n', 'shop'], env),
      () => runProbe(['rollback', 'checkout', '-n', 'shop', '--reason', 'probe', '--no-incident', '-o', 'json'], env),
    ]);
    expect(describeLeaks(leaksOf(runs, ['kubeToken']))).toBe('');
    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.outputs.stdout + run.outputs.stderr).toContain('expected server: to be a URL');
    }
  });
});
