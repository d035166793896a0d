import { describe, expect, it } from 'vitest';
import { fleetExitCode, fleetRow, fleetView, renderFleet, FLEET_ATTENTION_EXIT } from '../../src/report/fleet-view.js';
import type { RolloutRecord } from '../../src/rollout/record.js';

const NOW = Date.parse('2026-01-15T11:00:00Z');
const record = (over: Partial<RolloutRecord>): RolloutRecord =>
  ({
    id: 'r1',
    target: 'checkout',
    namespace: 'shop',
    phase: 'progressing',
    stepIndex: 0,
    weight: 10,
    images: { stable: 'a:1', canary: 'a:2' },
    startedBy: 'alice@laptop',
    startedAt: '2026-01-15T10:30:00Z',
    policy: { name: 'p', steps: [{ weight: 10 }, { weight: 25 }, { weight: 50 }] },
    checks: [],
    ...over,
  }) as unknown as RolloutRecord;

describe('fleet view', () => {
  it('a progressing rollout whose lease is held is fine; expired or absent is stalled', () => {
    const base = { namespace: 'shop', configMap: 'checkout-canary-rollout', liveWeight: 10 };
    expect(fleetRow({ ...base, record: record({}), lease: { holder: 'run 1', expired: false } }, NOW).problem).toBeNull();
    expect(fleetRow({ ...base, record: record({}), lease: { holder: 'run 1', expired: true } }, NOW).problem).toBe('stalled');
    expect(fleetRow({ ...base, record: record({}), lease: null }, NOW).problem).toBe('stalled');
  });

  it('a finished rollout is safe only when the live weight (or, without an Ingress, the recorded one) is 0', () => {
    const base = { namespace: 'shop', configMap: 'checkout-canary-rollout', lease: null };
    expect(fleetRow({ ...base, record: record({ phase: 'promoted', weight: 0 }), liveWeight: 0 }, NOW).problem).toBeNull();
    expect(fleetRow({ ...base, record: record({ phase: 'promoted', weight: 0 }), liveWeight: 10 }, NOW).problem).toBe('unsafe-weight');
    expect(fleetRow({ ...base, record: record({ phase: 'aborted', weight: 25 }), liveWeight: null }, NOW).problem).toBe('unsafe-weight');
    // The record says 25% was left, but the Ingress has been set to 0% since.
    expect(fleetRow({ ...base, record: record({ phase: 'aborted', weight: 25 }), liveWeight: 0 }, NOW).problem).toBeNull();
  });

  it('exit code and one line per rollout', () => {
    const view = fleetView(
      [
        { namespace: 'shop', configMap: 'checkout-canary-rollout', record: record({ phase: 'promoted', weight: 0 }), liveWeight: 0, lease: null },
        { namespace: 'pay', configMap: 'billing-canary-rollout', record: { unreadable: 'record.json is not JSON' }, liveWeight: null, lease: null },
      ],
      NOW,
    );
    expect(fleetExitCode(view)).toBe(FLEET_ATTENTION_EXIT);
    expect(fleetExitCode(fleetView([], NOW))).toBe(0);
    const lines = renderFleet(view).split('\n');
    expect(lines[0]).toMatch(/^NAMESPACE\s+TARGET\s+PHASE/);
    expect(lines[1]).toMatch(/^pay\s+billing\s+unreadable/);
    expect(lines[2]).toMatch(/^shop\s+checkout\s+promoted\s+0%\/0%\s+-\s+30m.*alice@laptop\s+ok$/);
  });
});
