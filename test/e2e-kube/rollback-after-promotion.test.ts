import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { StopState } from '../../src/rollout/record.js';
import { answer, policyYaml } from '../support/live-harness.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { NEW_IMAGE, OLD_IMAGE, REAL_POLICY, RECORD_CONFIGMAP, rollbackArgs, TARGET, type World } from '../support/real-kube/world.js';

// A rollback after promotion is a stop of the one stop machine, through the CLI on a real
// kube-apiserver: a deploy killed during its watch, its record left as the watch's breach stop
// leaves it after its first save (the stop in state traffic-zero-confirmed, stable still on the
// new image), is shown by `status` as an unfinished stop (exit 5) and finished by `--resume`
// (exit 7) or by `canary rollback` (exit 0, the operator's story). Gated on observed state only.

const REASON = "rolled back after promotion by the post-promotion watch: error-rate: stable's error rate 12% is above the 5% limit (2 breaching checks in a row)";

async function watchPolicy(world: World, url: string): Promise<string> {
  const path = join(world.dir, `watch-${Math.random().toString(36).slice(2, 7)}.yaml`);
  await writeFile(path, `${policyYaml(url, REAL_POLICY)}  postPromotion: { duration: 30m, interval: 500ms, baseline: 10m }\n`);
  return path;
}

/** A deploy in its watch, killed; its record then holds the watch's breach stop in `state`, its Lease long expired. */
async function killedWithStop(world: World, policy: string, state: StopState): Promise<void> {
  const deploy = world.deploy([], { policy });
  await world.until('the deploy to be watching, with a passed watch check recorded', async () => {
    const r = await world.record();
    return r?.phase === 'watching' && (r.watch?.passed ?? 0) >= 1;
  });
  deploy.child.kill('SIGKILL');
  expect((await deploy.done).signal).toBe('SIGKILL');
  const path = `/api/v1/namespaces/${world.namespace}/configmaps/${RECORD_CONFIGMAP}`;
  const cm = await world.api.get(path);
  const record = JSON.parse((cm['data'] as Record<string, string>)['record.json'] ?? '{}') as NonNullable<Awaited<ReturnType<World['record']>>>;
  const at = new Date().toISOString();
  const by = `deploy ${record.id} (post-promotion watch)`;
  record.phase = 'rolling-back';
  record.watch = { ...record.watch!, result: 'rolled-back', rolledBackBy: by };
  record.rollback = { reason: REASON, requestedBy: by, at };
  record.stop = { state, requestedBy: by, reason: REASON, result: 'rolled-back-after-promotion', token: 'deploy killed-run epoch 1', requestedAt: at, updatedAt: at, restoreImage: OLD_IMAGE, traffic: 'canary at 0%, all traffic on stable' };
  await world.api.mergePatch(path, { metadata: { resourceVersion: cm.metadata?.resourceVersion }, data: { 'record.json': JSON.stringify(record) } });
  await world.ageLease();
  expect(await world.deployment(TARGET)).toMatchObject({ image: NEW_IMAGE });
}

realKubeDescribe('a rollback after promotion on the stop machine, on a real API server', (tier) => {
  it('left unfinished: status says UNFINISHED STOP (exit 5); `deploy --resume` finishes it: stable on the previous image, exit 7', async () => {
    const { world } = tier;
    tier.prom.server.setHandler(async (req) => answer('healthy', req));
    const policy = await watchPolicy(world, tier.prom.url);
    await killedWithStop(world, policy, 'traffic-zero-confirmed');

    const unfinished = await world.run(['status', TARGET, '-n', world.namespace]);
    expectExit(unfinished, 5);
    expect(unfinished.stdout).toContain('UNFINISHED STOP');
    expect(unfinished.stdout).toContain('traffic-zero-confirmed');

    const resumed = await world.deploy(['--resume'], { policy }).done;
    expectExit(resumed, 7);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({
      phase: 'rolled-back-after-promotion',
      images: { stable: OLD_IMAGE },
      stop: { state: 'released', result: 'rolled-back-after-promotion' },
      outcome: { result: 'rolled-back-after-promotion', exitCode: 7 },
    });
    expectExit(await world.run(['status', TARGET, '-n', world.namespace]), 7);
    expect(world.history.violations()).toEqual([]);
  }, 120_000);

  it('left unfinished: `canary rollback` takes it on and finishes it as the operator (exit 0); status then exits 4', async () => {
    const { world } = tier;
    tier.prom.server.setHandler(async (req) => answer('healthy', req));
    const policy = await watchPolicy(world, tier.prom.url);
    await killedWithStop(world, policy, 'traffic-zero-confirmed');
    expectExit(await world.run(['status', TARGET, '-n', world.namespace]), 5);

    const stop = await world.run(rollbackArgs(world), { policy });
    expectExit(stop, 0);
    expect(stop.stdout).toContain(`stable Deployment ${TARGET} set back to ${OLD_IMAGE} and available`);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(await world.record()).toMatchObject({
      phase: 'rolled-back-after-promotion',
      images: { stable: OLD_IMAGE },
      watch: { result: 'rolled-back-by-operator' },
      stop: { state: 'released' },
      outcome: { result: 'rolled-back-after-promotion', exitCode: 4 },
    });
    const after = await world.run(['status', TARGET, '-n', world.namespace]);
    expectExit(after, 4);
    expect(after.stdout).toContain('watch:   stable set back on request');
    expect(world.history.violations()).toEqual([]);
  }, 120_000);
});
