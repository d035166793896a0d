import { describe, expect, it } from 'vitest';
import { NAMESPACE, rollbackCommand, SHORT_STEPS, useLiveWorld, TARGET, waitFor } from '../support/live-harness.js';

// The API server goes away in the middle of a rollout and stays away: the deploy gives up after
// the policy's attempts with exit 5 and says exactly where traffic was left; once the API is back,
// status agrees and `canary rollback` finishes the job.

const world = useLiveWorld();

describe('the Kubernetes API stays down mid-rollout', () => {
  it('exits 5 stating where traffic was left, which is where it is; rollback completes once the API is back', { timeout: 180_000 }, async () => {
    // Two tries per call keeps the test short: giving up is what is under test, not the count.
    const policy = await world.writePolicy('short', { steps: SHORT_STEPS, attempts: 2, stopDeadline: '30s' });
    // Held at its first step, so the API goes away mid-step rather than after the rollout ended.
    world.holdAt(10);
    const deploy = world.deploy([], { policy });
    // The step is recorded before and after its weight goes up; wait for both writes to land.
    await waitFor('the first step', () => world.weight() === '10' && world.record()?.phase === 'progressing' && world.record()?.weight === 10);
    const down = world.fake.injectFault({ kind: 'status', code: 503, times: Infinity });

    const run = await deploy.done;
    expect(run.code, run.stdout + run.stderr).toBe(5);
    expect(down.hits).toBeGreaterThan(0);
    // At a step boundary the raise itself may have failed: then both weights are named.
    // The stop kept trying 0% until its deadline; no read got through, so it says where traffic may be.
    const stated = /traffic: canary weight NOT confirmed at 0% \(no read got through; canary last set to (\d+)%(?:, or \d+% if the change in flight landed)?\): Kubernetes API at http:\/\/127\.0\.0\.1:\d+ unreachable .*HTTP 503/.exec(run.stdout);
    expect(stated, run.stdout).not.toBeNull();
    expect(run.stdout).toContain(`run \`canary rollback checkout -n shop -p ${policy} --reason '...'\``);
    // Nothing acted on a 0% no read had shown: the canary keeps its pods.
    expect((world.fake.get('Deployment', NAMESPACE, 'checkout-canary') as { spec?: { replicas?: number } }).spec?.replicas).toBeGreaterThan(0);

    world.fake.clearFaults();
    // The output told the truth: the canary holds exactly the weight it said.
    expect(world.weight()).toBe(stated?.[1]);

    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toContain(`weight:  ${stated?.[1]}% (recorded and live agree)`);

    const rollback = await world.run(rollbackCommand(NAMESPACE, 'API outage during deploy'));
    expect(rollback.code, rollback.stdout + rollback.stderr).toBe(0);
    expect(world.weight()).toBe('0');
    expect(world.record()).toMatchObject({ phase: 'aborted', weight: 0, rollback: { reason: 'API outage during deploy' } });
  });
});
