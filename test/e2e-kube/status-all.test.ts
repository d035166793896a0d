import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parse } from 'yaml';
import { shippedPath } from '../../src/paths.js';
import { ownershipLabels } from '../../src/k8s/labels.js';
import type { FleetView } from '../../src/report/fleet-view.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { TARGET, type World } from '../support/real-kube/world.js';

// `canary status --all` through the CLI on a real API server: a promoted rollout (a real deploy)
// in the world's namespace; in a second namespace a record whose deploy is gone (progressing, its
// Lease expired, the canary Ingress still at 25%) and a promoted record whose canary Ingress was
// left at 10%. Both of those need a person: exit 6, and they are named.

const NGINX_WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';

async function seedRecord(world: World, ns: string, target: string, record: RolloutRecord, weight: number | null, lease?: { renewTime: string; seconds: number }): Promise<void> {
  const labels = ownershipLabels(target);
  await world.api.post(`/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `${target}-canary-rollout`, namespace: ns, labels },
    data: { 'record.json': JSON.stringify({ ...record, target, namespace: ns }) },
  });
  if (weight !== null) {
    await world.api.post(`/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: `${target}-canary`, namespace: ns, labels, annotations: { 'nginx.ingress.kubernetes.io/canary': 'true', [NGINX_WEIGHT]: String(weight) } },
      spec: { ingressClassName: 'nginx', rules: [{ host: `${target}.example.com`, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: `${target}-canary`, port: { number: 80 } } } }] } }] },
    });
  }
  if (lease) {
    await world.api.post(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: `${target}-canary`, namespace: ns, labels },
      spec: { holderIdentity: 'run 99 attempt 1 on gone-runner pid 7 #abc123', leaseDurationSeconds: lease.seconds, acquireTime: lease.renewTime, renewTime: lease.renewTime },
    });
  }
}

realKubeDescribe('canary status --all on a real API server', (tier) => {
  it('lists records in two namespaces, one line each; exit 6 naming the stalled rollout and the one left at 10%', async () => {
    const { world } = tier;
    const deploy = await world.deploy().done;
    expectExit(deploy, 0);
    const promoted = await world.record();
    expect(promoted?.phase).toBe('promoted');
    if (!promoted) return;

    const other = `${world.namespace}-b`;
    await world.api.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } });
    const stalled: RolloutRecord = { ...promoted, phase: 'progressing', stepIndex: 1, weight: 25, outcome: undefined } as RolloutRecord;
    delete (stalled as { outcome?: unknown }).outcome;
    await seedRecord(world, other, TARGET, stalled, 25, { renewTime: new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, '.000000Z'), seconds: 15 });
    await seedRecord(world, other, 'payments', promoted, 10);

    const json = await world.run(['status', '--all', '-A', '-o', 'json']);
    expectExit(json, 6);
    const view = JSON.parse(json.stdout) as FleetView;
    const mine = view.rollouts.filter((r) => r.namespace === world.namespace || r.namespace === other);
    expect(mine.map((r) => [r.namespace, r.target, r.phase, r.problem])).toEqual([
      [world.namespace, TARGET, 'promoted', null],
      [other, TARGET, 'progressing', 'stalled'],
      [other, 'payments', 'promoted', 'unsafe-weight'],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || String(a[1]).localeCompare(String(b[1]))));
    const stalledRow = mine.find((r) => r.problem === 'stalled');
    expect(stalledRow).toMatchObject({ weight: { recorded: 25, live: 25 }, step: { index: 2, of: 3 }, lease: { expired: true } });
    expect(stalledRow?.startedBy).toBe(promoted.startedBy);
    expect(mine.find((r) => r.problem === 'unsafe-weight')?.weight).toEqual({ recorded: 0, live: 10 });
    expect(mine.find((r) => r.namespace === world.namespace)).toMatchObject({ weight: { recorded: 0, live: 0 }, lastVerdict: 'pass' });

    // Text: one line per rollout, the problems named after the table.
    const text = await world.run(['status', '--all', '-A']);
    expectExit(text, 6);
    const lines = text.stdout.split('\n');
    expect(lines.filter((l) => l.startsWith(`${other} `) && l.includes('STALLED'))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith(`${other} `) && l.includes('UNSAFE-WEIGHT'))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith(`${world.namespace} `) && / ok$/.test(l))).toHaveLength(1);
    expect(text.stdout).toContain(`${other}/${TARGET}: stalled: no deploy holds the lease`);

    // -n: one namespace only; the healthy one exits 0.
    const one = await world.run(['status', '--all', '-n', world.namespace, '-o', 'json']);
    expectExit(one, 0);
    expect((JSON.parse(one.stdout) as FleetView).rollouts.map((r) => r.namespace)).toEqual([world.namespace]);
    const two = await world.run(['status', '--all', '-n', other, '-o', 'json']);
    expectExit(two, 6);
    expect((JSON.parse(two.stdout) as FleetView).problems).toBe(2);

    // examples/github-actions/monitor.yml's step, as the runner runs it (bash -e), with this
    // checkout as `.canary`: it fails with one ::error:: annotation per rollout that needs a person.
    const workflow = parse(await readFile(shippedPath('examples/github-actions/monitor.yml'), 'utf8')) as {
      on: { schedule: { cron: string }[] };
      jobs: Record<string, { steps: { name?: string; run?: string }[] }>;
    };
    expect(workflow.on.schedule).toEqual([{ cron: '*/5 * * * *' }]);
    const script = Object.values(workflow.jobs).flatMap((j) => j.steps).find((step) => step.name === 'canary status --all')?.run;
    expect(script).toBeDefined();
    const runner = await mkdtemp(join(tmpdir(), 'canary-monitor-'));
    try {
      await mkdir(join(runner, '.canary'));
      await symlink(shippedPath('bin'), join(runner, '.canary', 'bin'));
      const summary = join(runner, 'summary.md');
      const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
        execFile('bash', ['-e', '-c', script ?? ''], { cwd: runner, env: { ...process.env, ...world.env, GITHUB_STEP_SUMMARY: summary } }, (err, stdout) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout }),
        );
      });
      expect(result.code).toBe(6);
      const annotations = result.stdout.split('\n').filter((l) => l.startsWith('::error'));
      const ours = annotations.filter((l) => l.includes(`${other}/`));
      expect(ours).toEqual([
        expect.stringMatching(new RegExp(`^::error title=canary rollout ${other}/${TARGET} stalled::stalled: no deploy holds the lease`)),
        expect.stringMatching(new RegExp(`^::error title=canary rollout ${other}/payments unsafe-weight::promoted, but the canary still takes 10% of traffic`)),
      ]);
      expect(annotations.some((l) => l.includes(`${world.namespace}/`))).toBe(false);
      expect(await readFile(summary, 'utf8')).toContain(`| ${other} | ${TARGET} | progressing | 25/25 | stalled |`);
    } finally {
      await rm(runner, { recursive: true, force: true });
    }
  }, 180_000);
});
