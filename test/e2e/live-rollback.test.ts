import { describe, expect, it } from 'vitest';
import {
  CANARY_INGRESS,
  NAMESPACE,
  ownCanaryIngress,
  OWNED,
  RECORD_CONFIGMAP,
  useLiveWorld,
  TARGET,
  waitFor,
  ROLLBACK,
} from '../support/live-harness.js';

// Rollbacks against the fake cluster: decided by analysis, asked for by an operator from a second
// process while a deploy runs, and forced when the record is gone or unreadable.

const world = useLiveWorld();


describe('rollback by analysis', () => {
  it('a canary failing 12% of requests is sent back to 0% at its first check; deploy and status exit 3 with the reason', async () => {
    world.setScenario('canary-errors');
    const run = await world.deploy().done;
    expect(run.stderr).toBe('');
    expect(run.code, run.stdout + run.stderr).toBe(3);
    expect(run.stdout).toContain('ROLLED BACK: error-rate: canary error rate 12% is above the 5% limit');
    expect(run.stdout).toContain('traffic: canary at 0%, all traffic on stable');

    expect(world.weight()).toBe('0');
    const record = world.record();
    expect(record).toMatchObject({ phase: 'rolled-back', weight: 0, outcome: { result: 'rolled-back', exitCode: 3 } });
    expect(record?.checks).toHaveLength(1);
    expect(record?.checks[0]).toMatchObject({ weight: 10, verdict: 'fail' });
    expect(record?.rollback?.stableVerified).toBe(true);
    // The canary pods are gone; stable still runs the old image.
    expect((world.fake.get('Deployment', NAMESPACE, 'checkout-canary') as { spec?: { replicas?: number } }).spec?.replicas).toBe(0);
    const stable = world.fake.get('Deployment', NAMESPACE, TARGET) as { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } };
    expect(stable.spec?.template?.spec?.containers?.[0]?.image).toBe(world.seeded.image);
    const events = world.fake.list('Event', NAMESPACE) as { reason?: string; type?: string }[];
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ reason: 'CanaryRolledBack', type: 'Warning' })]));

    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.code, status.stdout + status.stderr).toBe(3);
    expect(status.stdout).toContain('phase:   rolled-back');
    expect(status.stdout).toContain('outcome: rolled-back: error-rate: canary error rate 12% is above the 5% limit');
    expect(status.stdout).toContain('weight:  0% (recorded and live agree)');
  });
});

describe('canary rollback from a second process', () => {
  it('stops a running deploy (exit 4), sets the weight to 0, says what it did, and is idempotent', async () => {
    // Held at its first step until the rollback: the deploy cannot have moved on when it arrives.
    world.holdAt(10);
    const deploy = world.deploy();
    await waitFor('the deploy to reach its first step', () => world.weight() === '10' && world.record()?.phase === 'progressing' && world.record()?.weight === 10);

    const rollback = await world.run(ROLLBACK);
    expect(rollback.stderr).toBe('');
    expect(rollback.code, rollback.stdout + rollback.stderr).toBe(0);
    expect(rollback.stdout).toContain('canary Ingress checkout-canary: weight 10% → 0%, all traffic on stable');
    expect(rollback.stdout).toMatch(/record checkout-\d{8}T\d{6}Z: aborted by .*: pager/);
    expect(rollback.stdout).toContain('Deployment checkout-canary scaled to 0');
    expect(rollback.stdout).toContain('stable verified: Deployment shop/checkout: 3 of 3 replicas available');

    const run = await deploy.done;
    expect(run.code, run.stdout + run.stderr).toBe(4);
    expect(run.stdout).toContain('ABORTED: rolled back by an operator');
    expect(run.stdout).toContain('pager');

    expect(world.weight()).toBe('0');
    const record = world.record();
    expect(record).toMatchObject({ phase: 'aborted', weight: 0, rollback: { reason: 'pager' }, outcome: { result: 'aborted', exitCode: 4 } });

    const again = await world.run(ROLLBACK);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('already at 0%: all traffic is on stable');
    expect(again.stdout).toContain('already rolled back');
    expect(world.weight()).toBe('0');
    expect(world.record()?.id).toBe(record?.id);

    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.code, status.stdout + status.stderr).toBe(4);
    expect(status.stdout).toContain('phase:   aborted');
  });
});

describe('canary rollback without a usable record', () => {
  it('finds our canary Ingress by label when the record ConfigMap is missing, sets it to 0 and records the abort', async () => {
    world.fake.put(ownCanaryIngress(30));
    const run = await world.run(ROLLBACK);
    expect(run.stderr).toBe('');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`canary Ingress ${CANARY_INGRESS}: weight 30% → 0%, all traffic on stable`);
    expect(world.weight()).toBe('0');
    const record = world.record();
    expect(record).toMatchObject({ phase: 'aborted', weight: 0, rollback: { reason: 'pager' } });
    expect(record?.startedBy).toContain('no rollout record existed');
    expect(world.fake.get('ConfigMap', NAMESPACE, RECORD_CONFIGMAP)?.metadata?.labels).toMatchObject(OWNED);
  });

  it('overwrites a record holding corrupt JSON after setting the weight to 0; status reads it again', async () => {
    world.fake.put(ownCanaryIngress(30));
    world.fake.put({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: RECORD_CONFIGMAP, namespace: NAMESPACE, labels: { ...OWNED } },
      data: { 'record.json': '{"schemaVersion": 1, "phase": "progre' },
    });
    const broken = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(broken.code, broken.stdout + broken.stderr).toBe(2);
    expect(broken.stderr).toContain('is corrupt');
    expect(broken.stderr).toContain("`canary rollback checkout -n shop --reason '...'` still works");

    const run = await world.run(ROLLBACK);
    expect(run.stderr).toBe('');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`canary Ingress ${CANARY_INGRESS}: weight 30% → 0%, all traffic on stable`);
    expect(world.weight()).toBe('0');
    // The weight changed before the record was touched: the PATCH precedes the ConfigMap write.
    const writes = world.changes();
    const patch = writes.findIndex((w) => w.method === 'PATCH' && w.path.endsWith(`/ingresses/${CANARY_INGRESS}`));
    const save = writes.findIndex((w) => w.path.includes('/configmaps'));
    expect(patch).toBeGreaterThanOrEqual(0);
    expect(save).toBeGreaterThan(patch);
    expect(world.record()).toMatchObject({ phase: 'aborted', weight: 0 });
    expect(world.record()?.startedBy).toContain('the previous record was corrupt');

    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.code, status.stdout + status.stderr).toBe(4);
    expect(status.stdout).toContain('phase:   aborted');
  });
});
