import { describe, expect, it } from 'vitest';
import type { StatusView } from '../../src/report/status-view.js';
import type { CheckRecord } from '../../src/analysis/types.js';
import { LEASE, NAMESPACE, NEW_IMAGE, RUN_URL, useLiveWorld, TARGET, waitFor } from '../support/live-harness.js';

// One deploy at a time, and a deploy that died: the lease refuses a second deploy; after SIGKILL
// the record lets `status` tell the truth and `--resume` finish the rollout.

const world = useLiveWorld();

describe('the lease', () => {
  it('refuses a second deploy while one runs, naming the holder, and the second writes nothing', async () => {
    // Held at its first step: the first deploy is still running, whatever the machine's load
    // (it is stopped with SIGTERM below).
    world.holdAt(10);
    const first = world.deploy();
    await waitFor('the first deploy to hold the lease and route traffic', () => world.fake.get('Lease', NAMESPACE, LEASE) !== undefined && world.weight() === '10');

    // The second deploy runs on another machine (another CI run), whose requests the fake can tell apart.
    const second = await world.run(['deploy', TARGET, '-n', NAMESPACE, '--image', 'registry.example.com/shop/checkout:3.0.0'], { env: world.otherMachineEnv });
    expect(second.code, second.stdout + second.stderr).toBe(2);
    // The holder is the first deploy's process: its run, attempt, host and pid, not a run URL another attempt would share.
    expect(second.stderr).toMatch(new RegExp(`a rollout of checkout \\(checkout-\\w+, image ${NEW_IMAGE}\\) is in phase progressing at step \\d \\(\\d+%\\), and its lease is held by run 4242 attempt 1 on \\S+ pid ${first.child.pid} #[0-9a-f]{6} `));
    expect(second.stderr).toContain('if that deploy is running, wait for it to finish');
    expect(second.stdout).toBe('');
    expect(world.fake.requests.some((r) => r.credentials === 'absent')).toBe(true);
    expect(world.otherMachineChanges()).toEqual([]);
    // The first deploy is untouched and still owns the rollout.
    expect(world.record()?.images.canary).toBe(NEW_IMAGE);
    expect((world.fake.get('Lease', NAMESPACE, LEASE)?.['spec'] as { holderIdentity?: string }).holderIdentity).toMatch(new RegExp(`^run 4242 attempt 1 on \\S+ pid ${first.child.pid} #`));

    first.child.kill('SIGTERM');
    expect((await first.done).code).toBe(4);
  });
});

describe('a deploy killed mid-step', () => {
  it('leaves a record status tells the truth from; a plain deploy is refused; --resume completes it keeping the earlier checks', async () => {
    // Held at 25% until killed, so the kill lands in that step however slow the machine is. The
    // deploy runs with a 60 s lease (a loaded machine cannot make it lose it before the kill).
    // Once it is dead, its Lease is made what it would be long after: a 5 s lease last renewed
    // ten minutes ago, so status finds it expired without the test waiting on a clock, and
    // `--resume` waits only 5 s of observed silence (its own rule) before taking it over.
    const policy = await world.writePolicy('lease', {});
    world.holdAt(25);
    const deploy = world.deploy([], { policy });
    await waitFor('a check at the 25% step', () => {
      const r = world.record();
      return r?.phase === 'progressing' && r.checks.some((c) => c.stepIndex === 1);
    });
    deploy.child.kill('SIGKILL');
    expect((await deploy.done).signal).toBe('SIGKILL');

    const before = world.record();
    expect(before).toMatchObject({ phase: 'progressing', stepIndex: 1, weight: 25 });
    expect(world.weight()).toBe('25');

    const held = world.fake.get('Lease', NAMESPACE, LEASE);
    const longAgo = new Date(Date.now() - 600_000).toISOString().replace('Z', '000Z');
    world.fake.put({ ...held, spec: { ...(held?.['spec'] as Record<string, unknown>), leaseDurationSeconds: 5, renewTime: longAgo } } as Parameters<typeof world.fake.put>[0]);
    // Nobody renews the lease any more, and its duration has passed: status says so.
    expect(world.leaseExpired()).toBe(true);
    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toContain('phase:   progressing — step 2/3 at 25%');
    expect(status.stdout).toContain('weight:  25% (recorded and live agree)');
    expect(status.stdout).toContain(`lease:   expired by run 4242 attempt 1 on `);
    expect(status.stdout).toContain('no deploy process holds the lease: the rollout is stalled at 25%');
    // Pasted as printed, the hints act on namespace shop (observation 9: they used to omit -n).
    expect(status.stdout).toContain(`canary deploy checkout -n shop --image ${NEW_IMAGE} --resume`);
    expect(status.stdout).toContain("canary rollback checkout -n shop --reason '...'");

    const json = await world.run(['status', TARGET, '-n', NAMESPACE, '-o', 'json']);
    const view = JSON.parse(json.stdout) as StatusView;
    expect(view).toMatchObject({ phase: 'progressing', weight: { recorded: 25, live: 25, differs: false }, lease: { holder: expect.stringMatching(/^run 4242 attempt 1 on /), expired: true } });

    // A new deploy must not silently start over a rollout that never finished.
    const plain = await world.run(['deploy', TARGET, '-n', NAMESPACE, '--image', NEW_IMAGE], { policy });
    expect(plain.code, plain.stdout + plain.stderr).toBe(2);
    expect(plain.stderr).toContain('is in phase progressing at step 2 (25%), and its lease is held by run 4242 attempt 1 on ');
    expect(plain.stderr).toContain('if it stopped without finishing, continue it with');
    // The command it suggests is one a user can paste: --image is required, and the namespace matters.
    // Pasted as printed, both act on this namespace with this policy.
    expect(plain.stderr).toContain(`continue it with \`canary deploy checkout -n shop -p ${policy} --image ${NEW_IMAGE} --resume\``);
    expect(plain.stderr).toContain(`or stop it with \`canary rollback checkout -n shop -p ${policy} --reason '...'\``);
    expect(world.record()).toEqual(before);
    expect(world.weight()).toBe('25');

    world.release();
    // Resumed by another run (a re-run attempt of another workflow run): the record and Events name it.
    const resumed = await world.deploy(['--resume'], { policy, env: { GITHUB_RUN_ID: '4243', GITHUB_RUN_ATTEMPT: '2' } }).done;
    expect(resumed.stderr).toBe('');
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    // The dead deploy's Lease is still there: --resume says it waits to see it unrenewed for its duration.
    expect(resumed.stdout).toMatch(/the Lease shop\/checkout-canary is held by run 4242 attempt 1 on \S+ pid \d+ #[0-9a-f]{6}: waiting up to 5s to see whether it is still renewed before taking it over/);
    expect(resumed.stdout).toContain(`resuming rollout ${before?.id} from phase progressing, step 2 at 25%`);
    expect(resumed.stdout).toContain('PROMOTED');

    const after = world.record();
    expect(after).toMatchObject({ id: before?.id, phase: 'promoted', weight: 0, images: { stable: NEW_IMAGE, canary: NEW_IMAGE } });
    // The checks made before the kill are still there, unchanged, ahead of the new ones.
    // (The stored record leaves out the query texts older passing checks repeat from the latest.)
    const earlier = before?.checks ?? [];
    const judged = (checks: CheckRecord[]) => checks.map((c) => ({ ...c, results: c.results.map(({ queries: _queries, ...r }) => r) }));
    expect(judged(after?.checks.slice(0, earlier.length) ?? [])).toEqual(judged(earlier));
    // The resumed run checked both remaining steps (how many checks each got is the schedule's business).
    const resumedChecks = after?.checks.slice(earlier.length) ?? [];
    expect(new Set(resumedChecks.map((c) => c.weight))).toEqual(new Set([25, 50]));
    expect(world.weight()).toBe('0');
    expect(after?.startedBy).toBe(RUN_URL);
    expect(after?.resumedBy).toBe('https://github.com/acme/shop/actions/runs/4243/attempts/2');
    const events = world.fake.list('Event', NAMESPACE) as { reason?: string; message?: string }[];
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['CanaryResumed', 'CanaryPromoted']));
    expect(events.find((e) => e.reason === 'CanaryResumed')?.message).toBe(
      `canary ${NEW_IMAGE} (rollout ${before?.id}) resumed by https://github.com/acme/shop/actions/runs/4243/attempts/2 (started by ${RUN_URL})`,
    );
  }, 120_000);
});
