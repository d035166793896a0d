import { expect, it } from 'vitest';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import type { CliProcess } from '../support/live-harness.js';
import { CANARY, NEW_IMAGE, TARGET, type World } from '../support/real-kube/world.js';

// An operator's pause outlives the deploy that acknowledged it: the pause is in the record, so a
// `canary deploy --resume` that takes the rollout over after that deploy died keeps it (checks go
// on, the weight stays), and `canary resume` then moves it on. On the real API server; every wait
// gates on what the cluster holds or what the deploy printed, never on time.

/** What a deploy prints when a step's checks would move it on but an operator's pause holds it. */
const HOLDS = 'is ready to move on but stays at 25%: paused by';
const passed = async (world: World) => (await world.record())?.tallies?.passed ?? 0;

/**
 * Waits for `check` with a loaded machine's margin; a timeout says what the deploy printed, since
 * "timed out" alone cannot tell a lost pause from a deploy that never got going.
 */
async function untilFrom(world: World, deploy: CliProcess, what: string, check: () => Promise<boolean>): Promise<void> {
  try {
    await world.until(what, check, 150_000);
  } catch (err) {
    const tail = (text: string) => text.split('\n').slice(-25).join('\n');
    throw new Error(`${(err as Error).message}\n--- the deploy's stdout (last lines) ---\n${tail(deploy.stdout())}\n--- its stderr ---\n${tail(deploy.stderr())}`);
  }
}

realKubeDescribe('a paused rollout taken over by `deploy --resume` (real API server)', (tier) => {
  it('keeps its pause after the deploy died: the resumed deploy holds at 25% while its checks pass; `canary resume` moves it on to promotion', async () => {
    const { world } = tier;
    const deploy = await world.deployHeldAt(25);
    const pause = await world.run(['pause', TARGET, '-n', world.namespace, '--reason', 'checking dashboards']);
    expectExit(pause, 0);
    expect(pause.stdout).toMatch(/the deploy at 25% acknowledged at \d\d:\d\d:\d\d: paused at 25%/);

    // Released by the metrics, the step passes its checks; paused, it stays at 25%. Then the deploy dies.
    world.setMetrics({ kind: 'healthy' });
    await untilFrom(world, deploy, 'the paused deploy to say it holds', async () => deploy.stdout().includes(HOLDS));
    deploy.child.kill('SIGKILL');
    expect((await deploy.done).signal).toBe('SIGKILL');
    const before = await world.record();
    expect(before).toMatchObject({ phase: 'progressing', stepIndex: 1, weight: 25, controls: { paused: { reason: 'checking dashboards' } } });
    await world.ageLease();

    const resumed = world.deploy(['--resume']);
    // Whichever it does first: hold for the pause (as it should), or raise past 25% (the pause lost).
    await untilFrom(world, resumed, 'the resumed deploy to hold for the pause or move on', async () => resumed.stdout().includes(HOLDS) || world.history.weightsOf(CANARY).some((w) => w > 25));
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25]);
    expect(resumed.stdout()).toContain(HOLDS);
    const atHold = await passed(world);
    await untilFrom(world, resumed, 'two more passing checks of the resumed deploy', async () => (await passed(world)) >= atHold + 2);
    expect(await world.weight()).toBe(25);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25]);
    const held = await world.record();
    expect(held).toMatchObject({ id: before?.id, phase: 'progressing', stepIndex: 1, weight: 25, resumedBy: expect.any(String) });
    expect(held?.controls?.paused).toEqual(before?.controls?.paused);
    const status = await world.run(['status', TARGET, '-n', world.namespace]);
    expectExit(status, 0);
    expect(status.stdout).toContain('PAUSED by');

    const resume = await world.run(['resume', TARGET, '-n', world.namespace]);
    expectExit(resume, 0);
    expect(resume.stdout).toMatch(/the deploy at 25% acknowledged at \d\d:\d\d:\d\d: resumed at 25%/);
    const run = await resumed.done;
    expectExit(run, 0);
    expect(run.stdout).toContain(`resuming rollout ${before?.id}`);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25, 50, 100]);
    const record = await world.record();
    expect(record).toMatchObject({ id: before?.id, phase: 'promoted', weight: 0, images: { stable: NEW_IMAGE, canary: NEW_IMAGE } });
    expect(record?.controls?.log.map((c) => [c.kind, c.ack?.outcome])).toEqual([
      ['pause', 'applied'],
      ['resume', 'applied'],
    ]);
    expect(world.history.violations()).toEqual([]);
  }, 400_000);

  it('a pause written while no deploy runs (exit 6) is applied by the `deploy --resume` that takes the rollout over: it holds at 25% until `canary resume`', async () => {
    const { world } = tier;
    const deploy = await world.deployHeldAt(25);
    deploy.child.kill('SIGKILL');
    expect((await deploy.done).signal).toBe('SIGKILL');
    const pause = await world.run(['pause', TARGET, '-n', world.namespace, '--timeout', '2s']);
    expectExit(pause, 6);
    const waiting = (await world.record())?.controls?.log;
    expect(waiting).toMatchObject([{ kind: 'pause' }]);
    expect(waiting?.[0]?.ack).toBeUndefined();
    await world.ageLease();

    world.setMetrics({ kind: 'healthy' });
    const resumed = world.deploy(['--resume']);
    await untilFrom(world, resumed, 'the resumed deploy to hold for the pause or move on', async () => resumed.stdout().includes(HOLDS) || world.history.weightsOf(CANARY).some((w) => w > 25));
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25]);
    expect(resumed.stdout()).toContain(HOLDS);
    const held = await world.record();
    expect(held?.controls?.log).toMatchObject([{ kind: 'pause', ack: { outcome: 'applied', weight: 25 } }]);
    expect(held?.controls?.paused).toBeDefined();

    expectExit(await world.run(['resume', TARGET, '-n', world.namespace]), 0);
    expectExit(await resumed.done, 0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25, 50, 100]);
    expect(await world.record()).toMatchObject({ phase: 'promoted', weight: 0 });
    expect(world.history.violations()).toEqual([]);
  }, 400_000);
});
