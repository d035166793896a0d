import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NAMESPACE, NEW_IMAGE, SHORT_STEPS, startLiveWorld, TARGET, type LiveWorld } from '../support/live-harness.js';

// `canary deploy NAME --image IMAGE --retry` through the CLI against the fake API server: a
// rolled-back rollout of the same image starts again from its first step, in a new record that
// links the old one; anything else is refused with exit 2 and nothing changed.

let world: LiveWorld;
let policy: string;
beforeAll(async () => {
  world = await startLiveWorld();
  policy = await world.writePolicy('retry', { steps: SHORT_STEPS });
});
afterAll(async () => {
  await world?.stop();
});
beforeEach(() => world.reset());

describe('deploy --retry', () => {
  it('starts a rolled-back rollout of the same image again, links the two, and refuses another image or a promoted one', async () => {
    world.setScenario('canary-errors');
    const first = await world.deploy([], { policy }).done;
    expect(first.code, first.stdout + first.stderr).toBe(3);
    const failed = world.record();
    expect(failed?.phase).toBe('rolled-back');

    // Another image: refused, nothing written.
    const writesBefore = world.changes().length;
    const other = await world.run(['deploy', TARGET, '-n', NAMESPACE, '--image', 'registry.example.com/shop/checkout:9.9.9', '--retry'], { policy });
    expect(other.code, other.stdout + other.stderr).toBe(2);
    expect(other.stderr).toContain(`--retry: the last rollout of ${TARGET} (${failed?.id}) was of image ${NEW_IMAGE}, not registry.example.com/shop/checkout:9.9.9`);
    expect(world.record()?.id).toBe(failed?.id);
    // Only the lease was taken and given back: no object of the rollout was written.
    expect(world.changes().slice(writesBefore).filter((c) => !/\/leases(\/|$)/.test(c.path))).toEqual([]);

    // The same image, the canary fixed: a new rollout from the first step, linked to the old one.
    world.setScenario('healthy');
    const retry = await world.run(['deploy', TARGET, '-n', NAMESPACE, '--image', NEW_IMAGE, '--retry'], { policy });
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    const record = world.record();
    expect(record?.id).not.toBe(failed?.id);
    expect(record).toMatchObject({ phase: 'promoted', retryOf: failed?.id });
    expect(record?.steps[0]).toMatchObject({ index: 0, weight: 10 });
    expect(retry.stdout).toContain(`a retry of rollout ${failed?.id} (same image), from the first step`);
    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.stdout).toContain(`retry:   of rollout ${failed?.id} (started again from the first step)`);

    // A promoted rollout is not retried.
    const again = await world.run(['deploy', TARGET, '-n', NAMESPACE, '--image', NEW_IMAGE, '--retry'], { policy });
    expect(again.code, again.stdout + again.stderr).toBe(2);
    expect(again.stderr).toContain(`cannot be retried: it ended promoted; only a rolled-back or aborted rollout is started again`);
  });

  it('refuses --retry with no previous rollout, and with --resume or --dry-run', async () => {
    const none = await world.run(['deploy', TARGET, '-n', NAMESPACE, '--image', NEW_IMAGE, '--retry'], { policy });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`--retry: there is no previous rollout of ${TARGET} in namespace ${NAMESPACE} to retry`);
    const both = await world.run(['deploy', TARGET, '-n', NAMESPACE, '--image', NEW_IMAGE, '--retry', '--resume'], { policy });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--retry and --resume: expected one');
    const dry = await world.run(['deploy', TARGET, '-n', NAMESPACE, '--image', NEW_IMAGE, '--retry', '--dry-run'], { policy });
    expect(dry.code).toBe(2);
    expect(dry.stderr).toContain('--retry: only a live rollout can be retried');
  });
});
