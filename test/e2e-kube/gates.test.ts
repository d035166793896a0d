import { readFile, writeFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import type { Control } from '../../src/rollout/control-types.js';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { CANARY, NEW_IMAGE, OLD_IMAGE, RECORD_CONFIGMAP, TARGET, type World } from '../support/real-kube/world.js';

// Manual gates and operator controls (issue 19 items 2 and 5) through the CLI against the real
// API server: the deploy runs in one process, `canary promote|pause|resume` in others, and every
// wait gates on what the cluster holds (the weight on the canary Ingress, the record), never on time.

/** The tier's policy with `pause: <pause>` on the step at `weight`. */
async function pausingPolicy(world: World, weight: number, pause: string): Promise<string> {
  const path = await world.writePolicy(`pause-${weight}`, {});
  const text = await readFile(path, 'utf8');
  const step = new RegExp(`\\{ weight: ${weight}, duration: ([^ ]+) \\}`);
  if (!step.test(text)) throw new Error(`no step at ${weight}% in the tier's policy`);
  await writeFile(path, text.replace(step, `{ weight: ${weight}, duration: $1, pause: ${pause} }`));
  return path;
}

const control = (world: World, verb: string, ...extra: string[]) => world.run([verb, TARGET, '-n', world.namespace, ...extra]);

const stepPaused = (world: World, stepIndex: number) => async () => (await world.record())?.controls?.stepPause?.stepIndex === stepIndex;

/** Checks the deploy has run so far (every verdict). */
const checksRun = async (world: World) => (await world.record())?.tallies?.run ?? 0;

realKubeDescribe('manual gates and operator controls on a real API server', (tier) => {
  it('pause holds the weight while checks continue; status shows PAUSED; resume moves it on to promotion', async () => {
    const { world } = tier;
    const deploy = await world.deployHeldAt(25);

    const pause = await control(world, 'pause', '--reason', 'checking dashboards');
    expectExit(pause, 0);
    expect(pause.stdout).toMatch(/the deploy at 25% acknowledged at \d\d:\d\d:\d\d: paused at 25%; checks continue/);

    // Released by the metrics, the step passes its checks; paused, it stays at 25% while they go on.
    const passed = (await world.record())?.tallies?.passed ?? 0;
    world.setMetrics({ kind: 'healthy' });
    await world.until('three more passing checks while paused', async () => ((await world.record())?.tallies?.passed ?? 0) >= passed + 3);
    expect(await world.weight()).toBe(25);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25]);

    const status = await world.run(['status', TARGET, '-n', world.namespace]);
    expectExit(status, 0);
    expect(status.stdout).toContain('PAUSED by');
    expect(status.stdout).toContain('(checking dashboards)');
    expect(status.stdout).toMatch(/pause by .* acknowledged at/);
    const fleet = await world.run(['status', '--all', '-n', world.namespace]);
    expectExit(fleet, 0);
    expect(fleet.stdout).toMatch(/checkout .* PAUSED/);

    const resume = await control(world, 'resume', '-o', 'json');
    expectExit(resume, 0);
    const answer = JSON.parse(resume.stdout) as { result: string; rolloutId: string; control: { kind: string }; ack: { outcome: string; weight: number; message: string } };
    expect(answer).toMatchObject({ result: 'acknowledged', rolloutId: (await world.record())?.id, control: { kind: 'resume' }, ack: { outcome: 'applied', weight: 25 } });
    expect(answer.ack.message).toContain('resumed at 25%');
    const run = await deploy.done;
    expectExit(run, 0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25, 50, 100]);
    const record = await world.record();
    expect(record?.controls?.log.map((c) => [c.kind, c.ack?.outcome])).toEqual([
      ['pause', 'applied'],
      ['resume', 'applied'],
    ]);
    expect(world.history.violations()).toEqual([]);
  });

  it('a pause written while the canary starts holds the rollout at 0% until resumed', async () => {
    const { world } = tier;
    // The canary never becomes ready while the test holds it: the deploy stays in initializing.
    world.controller.set(CANARY, 'frozen');
    const deploy = world.deploy();
    await world.until('the deploy to be starting the canary', async () => (await world.record())?.phase === 'initializing');
    const pause = world.start(['pause', TARGET, '-n', world.namespace, '--timeout', '120s']);
    await world.until('the pause to be in the record', async () => ((await world.record())?.controls?.log.length ?? 0) === 1);
    world.controller.set(CANARY, 'ready');

    const paused = await pause.done;
    expectExit(paused, 0);
    expect(paused.stdout).toContain('the deploy at 0% acknowledged at');
    const checks = await checksRun(world);
    await world.until('the deploy to say it holds at 0%', async () => deploy.stdout().includes('before the first step: the canary stays at 0%'));
    expect((await world.weight()) ?? 0).toBe(0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([]);
    expect(await checksRun(world)).toBe(checks);

    expectExit(await control(world, 'resume'), 0);
    expectExit(await deploy.done, 0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25, 50, 100]);
    expect(world.history.violations()).toEqual([]);
  });

  it('a breach during a pause still rolls back (exit 3), and a pause after that is refused as stale', async () => {
    const { world } = tier;
    const deploy = await world.deployHeldAt(25);
    expectExit(await control(world, 'pause'), 0);

    world.setMetrics({ kind: 'canary-errors' });
    const run = await deploy.done;
    expectExit(run, 3);
    expect(await world.weight()).toBe(0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25]);
    expect(await world.record()).toMatchObject({ phase: 'rolled-back', weight: 0 });

    const late = await control(world, 'pause');
    expectExit(late, 2);
    expect(late.stderr).toContain('is already over (rolled-back');
    expect((await world.record())?.controls?.log).toHaveLength(1);
    expect(world.history.violations()).toEqual([]);
  });

  it('a `pause: true` step holds after passing its checks until `canary promote`; then the rollout goes on', async () => {
    const { world } = tier;
    const policy = await pausingPolicy(world, 25, 'true');
    const deploy = world.deploy([], { policy });
    await world.until('step 2 to pause at 25%', stepPaused(world, 1));
    const run0 = await checksRun(world);
    await world.until('two more checks during the pause', async () => (await checksRun(world)) >= run0 + 2);
    expect(await world.weight()).toBe(25);

    const status = await world.run(['status', TARGET, '-n', world.namespace]);
    expectExit(status, 0);
    expect(status.stdout).toContain("PAUSED (step 2's pause");

    const promote = await control(world, 'promote');
    expectExit(promote, 0);
    expect(promote.stdout).toMatch(/the deploy at 25% acknowledged at .*: moving on from 25%/);
    const run = await deploy.done;
    expectExit(run, 0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25, 50, 100]);
    expect(await world.deployment(TARGET)).toMatchObject({ image: NEW_IMAGE, available: 3 });
    expect(world.history.violations()).toEqual([]);
  });

  it('a `pause: 1s` step holds past its checks for that long, checks going on, then moves on by itself', async () => {
    const { world } = tier;
    const policy = await pausingPolicy(world, 25, '1s');
    const run = await world.deploy([], { policy }).done;
    expectExit(run, 0);
    expect(run.stdout).toMatch(/step 2 passed its checks and pauses at 25% for 1s \(until [^)]+\) or until promoted/);
    expect(run.stdout).toContain('step 2: its pause ended at');
    // One check makes the step ready; the pause kept it at 25% for more (the engine's clock, not the test's).
    expect((await world.record())?.tallies?.byStep[1]?.run).toBeGreaterThanOrEqual(2);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 25, 50, 100]);
    expect(world.history.violations()).toEqual([]);
  });

  it('`canary promote --full` skips the remaining steps and goes to the promotion', async () => {
    const { world } = tier;
    const policy = await pausingPolicy(world, 10, 'true');
    const deploy = world.deploy([], { policy });
    await world.until('step 1 to pause at 10%', stepPaused(world, 0));

    const promote = await control(world, 'promote', '--full');
    expectExit(promote, 0);
    expect(promote.stdout).toContain('the remaining steps are skipped');
    const run = await deploy.done;
    expectExit(run, 0);
    expect(world.history.weightsOf(CANARY).filter((w) => w > 0)).toEqual([10, 100]);
    expect(await world.record()).toMatchObject({ phase: 'promoted', weight: 0, images: { stable: NEW_IMAGE } });
    expect(world.history.violations()).toEqual([]);
  });

  it('a control for another rollout is refused: by the command (stale --rollout) and by the deploy (written into the record)', async () => {
    const { world } = tier;
    const policy = await pausingPolicy(world, 10, 'true');
    const deploy = world.deploy([], { policy });
    await world.until('step 1 to pause at 10%', stepPaused(world, 0));

    const stale = await control(world, 'pause', '--rollout', 'checkout-19990101T000000Z');
    expectExit(stale, 2);
    expect(stale.stderr).toContain('not checkout-19990101T000000Z');
    expect(stale.stderr).toContain('out of date, so nothing was written');
    expect((await world.record())?.controls?.log).toEqual([]);

    // A control naming another rollout, written straight into the record (an older client, a
    // hand edit): the deploy answers it as refused and does not move.
    const path = `/api/v1/namespaces/${world.namespace}/configmaps/${RECORD_CONFIGMAP}`;
    const cm = await world.api.get(path);
    const record = JSON.parse((cm['data'] as Record<string, string>)['record.json'] ?? '{}') as NonNullable<Awaited<ReturnType<World['record']>>>;
    const foreign: Control = { id: 'promote-foreign-1', kind: 'promote-full', by: 'someone@elsewhere', at: new Date().toISOString(), rolloutId: 'checkout-19990101T000000Z' };
    record.controls = { ...(record.controls ?? { log: [] }), log: [...(record.controls?.log ?? []), foreign] };
    await world.api.mergePatch(path, { metadata: { resourceVersion: cm.metadata?.resourceVersion }, data: { 'record.json': JSON.stringify(record) } });
    await world.until('the deploy to answer the foreign control', async () => (await world.record())?.controls?.log.find((c) => c.id === foreign.id)?.ack !== undefined);
    const answered = (await world.record())?.controls?.log.find((c) => c.id === foreign.id)?.ack;
    expect(answered).toMatchObject({ outcome: 'refused', weight: 10 });
    expect(answered?.message).toContain('issued against rollout checkout-19990101T000000Z');
    expect(await world.weight()).toBe(10);
    expect((await world.record())?.controls?.stepPause?.stepIndex).toBe(0);

    expectExit(await control(world, 'promote', '--full'), 0);
    expectExit(await deploy.done, 0);
    const after = await control(world, 'promote');
    expectExit(after, 2);
    expect(after.stderr).toContain('is already over (promoted');
    expect(world.history.violations()).toEqual([]);
  });

  it('a control nobody answers (the deploy died): exit 6 after --timeout, saying so; the control waits in the record', async () => {
    const { world } = tier;
    const deploy = await world.deployHeldAt(25);
    deploy.child.kill('SIGKILL');
    expect((await deploy.done).signal).toBe('SIGKILL');

    const pause = await control(world, 'pause', '--timeout', '2s');
    expectExit(pause, 6);
    expect(pause.stdout).toContain('waiting up to 2s for the running deploy to acknowledge it');
    expect(pause.stderr).toContain('no deploy answered within 2s: it may be stalled');
    const record = await world.record();
    expect(record?.controls?.log).toMatchObject([{ kind: 'pause', rolloutId: record?.id }]);
    expect(record?.controls?.log[0]?.ack).toBeUndefined();
    expect(await world.weight()).toBe(25);
  });

  it('a promote racing a breach never raises traffic: the control written while the stop is in flight is kept, not acted on', async () => {
    const { world } = tier;
    const { proxy, kubeconfig } = await world.proxy();
    const policy = await pausingPolicy(world, 25, 'true');
    const deploy = world.deploy([], { policy, env: { KUBECONFIG: kubeconfig } });
    await world.until('step 2 to pause at 25%', stepPaused(world, 1));

    // The breach is decided; its 0% write (with the stop marker) is held in flight by the proxy.
    const stopWrite = proxy.hold({ method: 'PATCH', path: `/ingresses/${CANARY}`, bodyIncludes: 'canary-cli.dev~1stop' });
    world.setMetrics({ kind: 'canary-errors' });
    await world.until("the deploy's 0% write to be in flight", async () => stopWrite.held.length === 1);

    // The operator's promote lands in the record between the deploy's read and its next save.
    const promote = world.start(['promote', TARGET, '-n', world.namespace]);
    await world.until('the promote to be in the record', async () => ((await world.record())?.controls?.log.length ?? 0) === 1);
    stopWrite.release();

    const [run, answer] = await Promise.all([deploy.done, promote.done]);
    expectExit(run, 3);
    expectExit(answer, 2);
    expect(answer.stderr).toContain('stopped before acting on it');
    expect(world.history.weightsOf(CANARY).filter((w) => w > 25)).toEqual([]);
    expect(await world.weight()).toBe(0);
    // The deploy's saves kept the operator's control (merged on conflict) and finished its own stop.
    const record = await world.record();
    expect(record).toMatchObject({ phase: 'rolled-back', weight: 0 });
    expect(record?.controls?.log.map((c) => c.kind)).toEqual(['promote']);
    const status = await world.run(['status', TARGET, '-n', world.namespace]);
    expect(status.stdout).toContain('promote by');
    expect(status.stdout).toContain('not acted on: the rollout ended first');
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.deployment(TARGET)).toMatchObject({ image: OLD_IMAGE, available: 3 });
    expect(world.history.violations()).toEqual([]);
  });
});
