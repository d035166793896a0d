import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { StatusView } from '../../src/report/status-view.js';
import { NAMESPACE, startLiveWorld, TARGET, waitFor, type LiveWorld } from '../support/live-harness.js';

// A cancelled CI job sends SIGTERM to `canary deploy`: by default the canary goes to 0% and the
// record says "aborted: cancelled"; with --on-cancel leave the weight stays and the record says so.
// Either way the process exits 4.

let world: LiveWorld;
beforeAll(async () => {
  world = await startLiveWorld();
});
afterAll(async () => {
  await world?.stop();
});
beforeEach(() => world.reset());

const atFirstStep = () => world.weight() === '10' && world.record()?.phase === 'progressing' && world.record()?.weight === 10;

describe('SIGTERM during a live rollout', () => {
  it('sends the canary to 0%, records "aborted: cancelled" and exits 4', async () => {
    world.holdAt(10);
    const deploy = world.deploy();
    await waitFor('the first step', atFirstStep);
    deploy.child.kill('SIGTERM');
    const run = await deploy.done;
    expect(run.code, run.stdout + run.stderr).toBe(4);
    expect(run.stderr).toContain('SIGTERM received: stopping the rollout');
    expect(run.stdout).toContain('ABORTED: aborted: cancelled');
    expect(run.stdout).toContain('traffic: canary at 0%, all traffic on stable');

    expect(world.weight()).toBe('0');
    expect(world.record()).toMatchObject({ phase: 'aborted', weight: 0, outcome: { result: 'aborted', reason: 'aborted: cancelled', exitCode: 4 } });
    expect((world.fake.get('Deployment', NAMESPACE, 'checkout-canary') as { spec?: { replicas?: number } }).spec?.replicas).toBe(0);

    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.code, status.stdout + status.stderr).toBe(4);
    expect(status.stdout).toContain('outcome: aborted: cancelled');
  });

  it('with --on-cancel leave keeps the weight, records that it did, and exits 4', async () => {
    world.holdAt(10);
    const deploy = world.deploy(['--on-cancel', 'leave']);
    await waitFor('the first step', atFirstStep);
    deploy.child.kill('SIGTERM');
    const run = await deploy.done;
    expect(run.code, run.stdout + run.stderr).toBe(4);
    expect(run.stdout).toContain('cancelled with --on-cancel leave: the canary keeps 10% of traffic');

    expect(world.weight()).toBe('10');
    expect(world.record()).toMatchObject({
      phase: 'aborted',
      weight: 10,
      outcome: { result: 'aborted', reason: 'aborted: cancelled (traffic left as it was, --on-cancel leave)', traffic: 'canary left at 10%', exitCode: 4 },
    });
    // The canary keeps serving its share: its pods were not scaled away.
    expect((world.fake.get('Deployment', NAMESPACE, 'checkout-canary') as { spec?: { replicas?: number } }).spec?.replicas).toBe(3);

    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.stdout).toContain('weight:  10% (recorded and live agree)');
    expect(status.stdout).toContain('traffic: canary left at 10%');
  });

  it('a second SIGTERM mid-rollback makes one more quick try at 0%, records it, and exits 4', async () => {
    // Calls may wait as long as the test holds them: the rollback's PATCH stays in flight.
    const policy = await world.writePolicy('patient', { kubeTimeout: '60s' });
    world.holdAt(10);
    const deploy = world.deploy([], { policy });
    await waitFor('the first step', atFirstStep);
    // Hold the rollback's weight PATCH up, so the second signal lands while it is in flight.
    const slow = world.holdRequests({ method: 'PATCH', pathPattern: '/ingresses/checkout-canary' });
    deploy.child.kill('SIGTERM');
    await waitFor('the rollback PATCH to be in flight', () => slow.hits === 1);
    deploy.child.kill('SIGTERM');
    const run = await deploy.done;
    slow.release();
    expect(run.code, run.stdout + run.stderr).toBe(4);
    expect(run.stderr).toContain('second SIGTERM: recording where the rollout stopped, then exiting');

    // The forced exit's own PATCH is not held up: the canary is at 0% and the record says so.
    await waitFor('the canary at 0%', () => world.weight() === '0');
    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.stdout).toContain('outcome: aborted: exited on a second signal before the rollout had stopped');
    expect(status.stdout).toContain('traffic: canary at 0%, all traffic on stable');
    expect(status.code, status.stdout + status.stderr).toBe(4);
    const json = await world.run(['status', TARGET, '-n', NAMESPACE, '-o', 'json']);
    expect((JSON.parse(json.stdout) as StatusView).weight).toEqual({ recorded: 0, live: 0, differs: false });
  });
});
