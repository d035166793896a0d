import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { vector, type SeenRequest } from '../support/fake-prometheus.js';
import { answer, policyYaml } from '../support/live-harness.js';
import { expectExit, realKubeDescribe, type Tier } from '../support/real-kube/tier.js';
import { NEW_IMAGE, OLD_IMAGE, REAL_POLICY, rollbackArgs, TARGET, type World } from '../support/real-kube/world.js';

// The post-promotion watch (spec.postPromotion) through the CLI against a real kube-apiserver.
// The scripted Prometheus degrades stable once the stable Deployment runs the new image (read from
// the API at each query, so it follows what the cluster holds, not the clock): stable then fails
// 12% of requests, against a baseline of 0.19% measured before the rollout.

/** Stable's answers once degraded; the canary's and everything else stay the live harness's healthy ones. */
function degradedStable(req: SeenRequest) {
  const promql = req.params['query'] ?? '';
  if (promql.includes('canary!=""')) return answer('healthy', req);
  if (promql.startsWith('histogram_quantile')) return vector([{ value: 0.19 }]);
  if (promql.includes('status=~"5..')) return vector([{ value: 120 }]);
  if (promql.includes('nginx_ingress_controller_requests')) return vector([{ value: 1000 }]);
  return answer('healthy', req);
}

/** Stable degrades once it runs the new image, when `degrade` is set. */
function script(tier: Tier, degrade: boolean): void {
  const { world } = tier;
  tier.prom.server.setHandler(async (req) => {
    if (!degrade || (req.params['query'] ?? '') === 'time()') return answer('healthy', req);
    const stable = await world.deployment(TARGET).catch(() => undefined);
    return stable?.image === NEW_IMAGE ? degradedStable(req) : answer('healthy', req);
  });
}

async function watchPolicy(world: World, url: string, watch: string, incidents: readonly string[] = []): Promise<string> {
  const path = join(world.dir, `watch-${Math.random().toString(36).slice(2, 7)}.yaml`);
  await writeFile(path, `${policyYaml(url, { ...REAL_POLICY, incidents })}  postPromotion: ${watch}\n`);
  return path;
}

realKubeDescribe('the post-promotion watch on a real API server', (tier) => {
  it('stable degrades after promotion: set back to the previous image and available, the incident opened, exit 7; status says so', async () => {
    const { world } = tier;
    script(tier, true);
    const received: string[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const policy = await watchPolicy(world, tier.prom.url, '{ duration: 10m, interval: 500ms, baseline: 10m }', [`    - { type: webhook, url: "http://127.0.0.1:${port}/hook" }`]);
      const run = await world.deploy([], { policy }).done;
      expectExit(run, 7);
      expect(run.stdout).toContain('ROLLED BACK AFTER PROMOTION: rolled back after promotion by the post-promotion watch: error-rate:');
      expect(run.stdout).toContain('(2 breaching checks in a row)');

      const stable = await world.deployment(TARGET);
      expect(stable).toMatchObject({ image: OLD_IMAGE, available: 3 });
      expect(stable?.observedGeneration).toBe(stable?.generation);
      expect(await world.weight()).toBe(0);
      const record = await world.record();
      expect(record).toMatchObject({
        phase: 'rolled-back-after-promotion',
        images: { stable: OLD_IMAGE, canary: NEW_IMAGE },
        watch: { result: 'rolled-back', previousImage: OLD_IMAGE, failed: 2 },
        rollback: { stableRestore: { image: OLD_IMAGE, done: true }, stableVerified: true },
        outcome: { result: 'rolled-back-after-promotion', exitCode: 7 },
      });
      expect(record?.baseline).toMatchObject({ requests: 1080, errors: 2, windowMs: 600_000 });
      expect(received).toHaveLength(1);
      expect(received[0]).toContain('rolled back after promotion');
      expect(await world.lease()).toBeUndefined();

      const status = await world.run(['status', TARGET, '-n', world.namespace]);
      expectExit(status, 7);
      expect(status.stdout).toContain('phase:   rolled-back-after-promotion');
      expect(status.stdout).toContain('watch:   breached: stable set back by the watch');
      expect(status.stdout).toContain(`images:  stable ${OLD_IMAGE}`);
      expect(world.history.violations()).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 120_000);

  it('a healthy watch ends PROMOTED with exit 0, stable on the new image', async () => {
    const { world } = tier;
    script(tier, false);
    const policy = await watchPolicy(world, tier.prom.url, '{ duration: 2s, interval: 500ms, baseline: 10m }');
    const run = await world.deploy([], { policy }).done;
    expectExit(run, 0);
    expect(run.stdout).toContain('PROMOTED');
    // How many checks fit in 2s depends on how loaded the machine is (a late check skips ticks); none breached.
    expect(run.stdout).toMatch(/post-promotion watch: (\d+) checks over 2s \(\1 passed, 0 inconclusive, 0 breached\)/);
    expect(await world.deployment(TARGET)).toMatchObject({ image: NEW_IMAGE, available: 3 });
    const record = await world.record();
    expect(record).toMatchObject({ phase: 'promoted', images: { stable: NEW_IMAGE }, watch: { result: 'passed', failed: 0 }, outcome: { exitCode: 0 } });
    expect(record?.watch?.checks).toBeGreaterThanOrEqual(1);
    expect(world.history.violations()).toEqual([]);
  }, 120_000);

  it('`canary rollback` during the watch sets stable back (exit 0); the watching deploy notices and exits 4', async () => {
    const { world } = tier;
    script(tier, false);
    const policy = await watchPolicy(world, tier.prom.url, '{ duration: 10m, interval: 500ms, baseline: 10m }');
    const deploy = world.deploy([], { policy });
    await world.until('the deploy to be watching, with a passed watch check recorded', async () => {
      const r = await world.record();
      return r?.phase === 'watching' && (r.watch?.passed ?? 0) >= 1;
    });
    const watching = await world.run(['status', TARGET, '-n', world.namespace]);
    expectExit(watching, 0);
    expect(watching.stdout).toContain('phase:   watching');
    expect(watching.stdout).toMatch(/watch: {3}watching stable after promotion, \S+ left \(ends /);
    expect(watching.stdout).toContain('latest: PASS at');

    const stop = await world.run(rollbackArgs(world), { policy });
    expectExit(stop, 0);
    expect(stop.stdout).toContain(`stable Deployment ${TARGET} set back to ${OLD_IMAGE} and available`);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });

    const run = await deploy.done;
    expectExit(run, 4);
    expect(run.stdout).toContain('rolled back by an operator');
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({
      phase: 'rolled-back-after-promotion',
      images: { stable: OLD_IMAGE },
      watch: { result: 'rolled-back-by-operator' },
      outcome: { result: 'rolled-back-after-promotion', exitCode: 4 },
    });
    const after = await world.run(['status', TARGET, '-n', world.namespace]);
    expectExit(after, 4);
    expect(after.stdout).toContain('watch:   stable set back on request');
    // A second rollback finds the work done.
    const again = await world.run(rollbackArgs(world), { policy });
    expectExit(again, 0);
    expect(again.stdout).toContain('was already rolled back after promotion');
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(world.history.violations()).toEqual([]);
  }, 120_000);
});
