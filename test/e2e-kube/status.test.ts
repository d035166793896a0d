import { expect, it } from 'vitest';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { rollbackCommand } from '../support/live-harness.js';
import { CANARY, TARGET } from '../support/real-kube/world.js';

// `canary status` on the real API server, through the CLI: it tells what the cluster holds, and a
// stop that is not finished is never shown as done.

realKubeDescribe('canary status on a real API server', (tier) => {
  it('after a stop the deploy could not confirm: status names the unfinished stop and its command, exits 5; the command finishes it', async () => {
    const { world } = tier;
    const { proxy, kubeconfig } = await world.proxy();
    // Every 0% write of the deploy's own stop is held: the API "is down" for the stop alone.
    proxy.hold({ method: 'PATCH', path: `/ingresses/${CANARY}`, bodyIncludes: 'by deploy', times: 1000 });
    const policy = await world.writePolicy('short-stop', { stopDeadline: '2s' });
    world.setMetrics({ kind: 'canary-errors' });
    const run = await world.deploy([], { policy, env: { KUBECONFIG: kubeconfig } }).done;
    expectExit(run, 5);
    expect(`${run.stdout}${run.stderr}`).toContain('NOT confirmed at 0%');
    expect(await world.weight()).toBe(10);

    const status = await world.run(['status', TARGET, '-n', world.namespace]);
    expectExit(status, 5);
    expect(status.stdout).not.toMatch(/canary is at 0%|all traffic on stable/);
    expect(status.stdout).toContain('UNFINISHED STOP');
    expect(status.stdout).toContain('canary at 10% (read now)');
    expect(status.stdout).toContain(`finish the stop with \`canary rollback ${TARGET} -n ${world.namespace} --reason '...'\``);
    // What the record's stop machine holds: its state, who asked and why, who holds it, when.
    expect(status.stdout).toMatch(/UNFINISHED STOP in state requested \(requested by deploy checkout-\S+: .+\): canary at 10% \(read now\)/);
    expect(status.stdout).toMatch(/ {2}stop: {4}NOT finished, in state requested; requested by deploy checkout-\S+ at \S+Z: /);
    expect(status.stdout).toMatch(/ {11}held by .+ epoch \d+, last updated .+ \(\S+Z\); finish it with `canary rollback /);
    const json = await world.run(['status', TARGET, '-n', world.namespace, '-o', 'json']);
    expectExit(json, 5);
    const view = JSON.parse(json.stdout) as { unfinishedStop: Record<string, unknown>; stop: Record<string, unknown>; weight: { live: number } };
    expect(view.unfinishedStop).toMatchObject({ state: 'requested', requestedBy: expect.stringMatching(/^deploy checkout-/), heldBy: expect.stringMatching(/ epoch \d+$/), traffic: 'canary at 10% (read now)' });
    expect(view.stop).toMatchObject({ state: 'requested', direction: 'back' });
    expect(view.weight.live).toBe(10);

    const finish = await world.run(rollbackCommand(world.namespace, 'finish the stop'));
    expectExit(finish, 0);
    expect(await world.weight()).toBe(0);
    const after = await world.run(['status', TARGET, '-n', world.namespace]);
    expect(after.stdout).not.toContain('UNFINISHED STOP');
    // The finished stop shows its final state and who finished it.
    expect(after.stdout).toMatch(/ {2}stop: {4}finished; requested by \S+/);
    expect(after.stdout).toMatch(/held by rollback by \S+ at /);
    expectExit(after, 4);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
  });

  it('status of a target with no rollout record exits 2 and says what it looked for', async () => {
    const { world } = tier;
    const run = await world.run(['status', 'payments', '-n', world.namespace]);
    expectExit(run, 2);
    expect(run.stderr).toContain(`no rollout of payments in namespace ${world.namespace}: there is no ConfigMap payments-canary-rollout`);
  });
});
