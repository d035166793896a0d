import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { realKubeDescribe } from '../support/real-kube/tier.js';
import { atWeight, CANARY } from '../support/real-kube/world.js';

// The API server stopped for 20 s in the middle of the 25% step (down.sh), then started again on
// the same data (up.sh). The deploy stops (exit 5) and must not stop "successfully" without the
// canary at 0%: nothing is scaled down, released or recorded as ended while weight 0
// is not confirmed, and the canary never keeps traffic with no pods. This file has its own API
// server: stopping it would break the other files' tests.

const OUTAGE_MS = 20_000;

realKubeDescribe('an API server outage in the middle of a step', (tier) => {
  it('after 20 s without the API server, the deploy ends with the canary at 0% in the API, and never left traffic on a canary without pods', async () => {
    const { world, cluster } = tier;
    world.setMetrics({ kind: 'hold', atOrAbove: 25 });
    // The stop keeps driving the canary to 0% for longer than the outage plus a restart of the API
    // server on a loaded machine (up.sh alone can take tens of seconds there).
    const policy = await world.writePolicy('long-stop', { stopDeadline: '180s' });
    const deploy = world.deploy([], { policy });
    await world.until('the deploy to hold at 25%', atWeight(world, 25));

    await cluster.stopServer();
    // The fault is an outage of this length; nothing is asserted about how long anything took.
    await sleep(OUTAGE_MS);
    await cluster.startServer();
    // Whether the deploy rode the outage out or is stopping, its analysis may now pass.
    world.setMetrics({ kind: 'healthy' });

    const run = await deploy.done;
    const output = `deploy exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
    expect(world.history.gap).toBe(false);
    expect(await world.weight(), output).toBe(0);
    expect(world.history.violations(), output).toEqual([]);
    // The promised outcome (one, not either of two): a save during the outage fails after its
    // retries (a few seconds, far less than 20 s), so the deploy stops with exit 5; its stop rides
    // the outage out (stopDeadline 180s) and confirms 0% once the API is back, then records it.
    expect(run.code, output).toBe(5);
    const record = await world.record();
    expect(record, output).toMatchObject({ phase: 'failed', weight: 0, outcome: { exitCode: 5, traffic: 'canary at 0%, all traffic on stable' } });
    expect(run.stdout + run.stderr).not.toContain(`${CANARY} 25%`);
    expect((await world.deployment(CANARY))?.replicas).toBe(0);
    expect(await world.lease()).toBeUndefined();
  }, 240_000);
});
