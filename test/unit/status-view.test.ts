import { describe, expect, it } from 'vitest';
import { renderStatus, statusView } from '../../src/report/status-view.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { statusExitCode } from '../../src/cli/status.js';
import { rolloutRecord } from '../support/records.js';

const NOW = Date.parse('2026-01-15T10:21:30Z');

function record(over: Partial<RolloutRecord> = {}): RolloutRecord {
  return rolloutRecord({
    startedBy: 'https://github.com/shop/checkout/actions/runs/42',
    updatedAt: '2026-01-15T10:21:00.000Z',
    policy: {
      name: 'default',
      source: 'policies/default.yaml',
      plannedChecks: 40,
      intervalMs: 60_000,
      steps: [
        { weight: 10, durationMs: 900_000 },
        { weight: 25, durationMs: 600_000 },
        { weight: 50, durationMs: 900_000 },
      ],
    },
    checks: Array.from({ length: 21 }, (_, i) => ({
      index: i + 1,
      at: new Date(Date.parse('2026-01-15T10:01:00Z') + i * 60_000).toISOString(),
      stepIndex: i < 15 ? 0 : 1,
      weight: i < 15 ? 10 : 25,
      verdict: 'pass' as const,
      results: [
        { metric: 'error-rate', check: 'error rate ≤ 5%', judge: 'threshold' as const, critical: true, unit: 'ratio' as const, canary: 0.004, stable: 0.005, threshold: 0.05, verdict: 'pass' as const, reason: 'ok', queries: [] },
      ],
    })),
    ...over,
  });
}

const lease = { holder: 'ci@runner', renewTime: '2026-01-15T10:21:25.000Z', expired: false };

describe('canary status', () => {
  it('shows phase, step, weight, images, age, the last check and what happens next', () => {
    const text = renderStatus(statusView({ record: record(), liveWeight: 25, lease, now: NOW }), NOW);
    expect(text).toContain('phase:   progressing — step 2/3 at 25%');
    expect(text).toContain('weight:  25% (recorded and live agree)');
    expect(text).toContain('images:  stable shop/checkout:1 · canary shop/checkout:2');
    expect(text).toContain('started: 21m30s ago (2026-01-15T10:00:00.000Z) by https://github.com/shop/checkout/actions/runs/42');
    expect(text).toContain('last check #21 at 2026-01-15T10:21:00.000Z (25%): PASS');
    expect(text).toMatch(/error-rate\s+error rate ≤ 5%\s+0\.4%\s+0\.5%\s+5%\s+pass/);
    // 6 checks done at 25% out of 10 planned.
    expect(text).toContain('next:    4 more passing checks at 25% (one every 1m), then 50%');
  });

  it('says so when the recorded and the live weight differ', () => {
    const text = renderStatus(statusView({ record: record(), liveWeight: 0, lease, now: NOW }), NOW);
    expect(text).toContain('25% recorded, but 0% live on the Ingress: they differ');
  });

  it('tells the operator how to continue or stop a rollout whose deploy process is gone', () => {
    const view = statusView({ record: record(), liveWeight: 25, lease: { ...lease, expired: true }, now: NOW });
    expect(view.next).toBe(
      "no deploy process holds the lease: the rollout is stalled at 25%; continue it with `canary deploy checkout -n shop --image shop/checkout:2 --resume` or stop it with `canary rollback checkout -n shop --reason '...'`",
    );
    expect(statusExitCode(view)).toBe(0);
  });

  it('flags a rollout whose deploy process is gone above everything else, without changing the exit code', () => {
    const view = statusView({ record: record(), liveWeight: 25, lease: { ...lease, expired: true }, now: NOW });
    expect(view.attention).toBe('STALLED: no deploy process holds the lease; the canary keeps 25% of traffic and nothing is judging it');
    const warn = (s: string) => `<warn>${s}</warn>`;
    const lines = renderStatus(view, NOW, { bold: (s) => s, warn }).split('\n');
    expect(lines[1]).toBe('<warn>  ⚠ STALLED: no deploy process holds the lease; the canary keeps 25% of traffic and nothing is judging it</warn>');
    expect(lines.at(-1)).toMatch(/^<warn> {2}next: {4}no deploy process holds the lease/);
    expect(statusExitCode(view)).toBe(0);
    // A rollout in good hands has nothing to flag.
    expect(statusView({ record: record(), liveWeight: 25, lease, now: NOW }).attention).toBeNull();
  });

  it('does not say "nothing" next when a finished rollout left the canary with traffic', () => {
    const outcome = { result: 'aborted' as const, reason: 'aborted: cancelled (traffic left as it was, --on-cancel leave)', at: '', exitCode: 4, traffic: 'canary left at 25%' };
    const left = statusView({ record: record({ phase: 'aborted', weight: 25, outcome }), liveWeight: 25, lease: null, now: NOW });
    expect(left.next).toBe("the canary still takes 25% of traffic and nothing is judging it: run `canary rollback checkout -n shop --reason '...'`");
    expect(left.attention).toBe('the rollout is over (aborted) but the canary still takes 25% of traffic, and nothing is judging it');
    expect(renderStatus(left, NOW)).toContain('  ⚠ the rollout is over (aborted) but the canary still takes 25% of traffic');
    expect(statusExitCode(left)).toBe(4);
    // Once the Ingress is back at 0% (say, by hand), there is nothing left to do.
    const cleared = statusView({ record: record({ phase: 'aborted', weight: 25, outcome }), liveWeight: 0, lease: null, now: NOW });
    expect(cleared.next).toBe('nothing: the canary Ingress is at 0% now; fix the cause and deploy again');
    expect(cleared.attention).toBeNull();
  });

  it('exits 3 after a rollback by analysis and 4 after an abort', () => {
    const outcome = { result: 'rolled-back' as const, reason: 'error-rate: canary 12% above the 5% limit', at: '', exitCode: 3, traffic: 'canary at 0%, all traffic on stable' };
    const rolled = statusView({ record: record({ phase: 'rolled-back', weight: 0, outcome }), liveWeight: 0, lease: null, now: NOW });
    expect(statusExitCode(rolled)).toBe(3);
    expect(renderStatus(rolled, NOW)).toContain('outcome: rolled-back: error-rate: canary 12% above the 5% limit');
    expect(rolled.next).toBe('nothing: canary at 0%, all traffic on stable; fix the cause and deploy again');
    expect(rolled.attention).toBeNull();
    expect(statusExitCode(statusView({ record: record({ phase: 'aborted', weight: 0 }), liveWeight: 0, lease: null, now: NOW }))).toBe(4);
    expect(statusExitCode(statusView({ record: record({ phase: 'promoted', weight: 0 }), liveWeight: 0, lease: null, now: NOW }))).toBe(0);
  });

  // Issue 16, live: the deploy decided a rollback, could not write 0% (API down), exited 5; the
  // record says rolling-back at 10%, and once the API was back the canary was still at 10%.
  it('after a stop that could not be confirmed: names the unfinished stop and the command that finishes it, never "at 0%", and exits 5', () => {
    const rollback = { reason: 'error-rate: canary 62% above the 5% limit', requestedBy: 'ci', at: '2026-01-15T10:21:00.000Z' };
    const stuck = record({ phase: 'rolling-back', weight: 10, stepIndex: 0, rollback });
    for (const held of [null, { ...lease, expired: true }]) {
      const view = statusView({ record: stuck, liveWeight: 10, live: { stoppedBy: null, overrides: [] }, lease: held, now: NOW });
      const text = renderStatus(view, NOW);
      expect(text).not.toMatch(/canary is at 0%|all traffic on stable/);
      expect(view.attention).toBe('UNFINISHED STOP (error-rate: canary 62% above the 5% limit): canary at 10% (read now); nothing is finishing it');
      expect(view.next).toContain("finish the stop with `canary rollback checkout -n shop --reason '...'`");
      expect(statusExitCode(view)).toBe(5);
    }
    // A deploy still holding its lease is still stopping: said so, with the command in case it does not finish.
    const inHand = statusView({ record: stuck, liveWeight: 10, lease, now: NOW });
    expect(inHand.next).toBe("the deploy holding the lease (ci@runner) is still stopping it; if it does not finish, finish the stop with `canary rollback checkout -n shop --reason '...'`");
    expect(statusExitCode(inHand)).toBe(5);
    // Only a read says 0%.
    const zero = statusView({ record: stuck, liveWeight: 0, live: { stoppedBy: 'rolled-back by deploy', overrides: [] }, lease: null, now: NOW });
    expect(zero.attention).toContain('canary at 0% (read now)');
    expect(statusExitCode(zero)).toBe(5);
  });

  it("reads the record's stop machine: a stop recorded but not released is unfinished (exit 5) though the phase is final, naming its state, requester, holder and when", () => {
    const stop = {
      state: 'recorded' as const,
      requestedBy: 'deploy checkout-20260115T100000Z',
      reason: 'error-rate: canary error rate 12% is above the 5% limit',
      result: 'rolled-back' as const,
      token: 'ci@runner epoch 1',
      requestedAt: '2026-01-15T10:20:00.000Z',
      updatedAt: '2026-01-15T10:20:30.000Z',
    };
    const r = record({ phase: 'rolled-back', weight: 0, stop, outcome: { result: 'rolled-back', reason: stop.reason, at: stop.updatedAt, exitCode: 3, traffic: 'canary at 0%, all traffic on stable' } });
    const view = statusView({ record: r, liveWeight: 0, lease: { ...lease, expired: true }, now: NOW });
    expect(statusExitCode(view)).toBe(5);
    expect(view.unfinishedStop).toMatchObject({ state: 'recorded', requestedBy: stop.requestedBy, reason: stop.reason, heldBy: 'ci@runner epoch 1', updatedAt: stop.updatedAt, traffic: 'canary at 0% (read now)' });
    const text = renderStatus(view, NOW);
    expect(text).toContain('⚠ UNFINISHED STOP in state recorded (requested by deploy checkout-20260115T100000Z: error-rate: canary error rate 12% is above the 5% limit): canary at 0% (read now); nothing is finishing it');
    expect(text).toContain('  stop:    NOT finished, in state recorded; requested by deploy checkout-20260115T100000Z at 2026-01-15T10:20:00.000Z: error-rate');
    expect(text).toContain("           held by ci@runner epoch 1, last updated 1m ago (2026-01-15T10:20:30.000Z); finish it with `canary rollback checkout -n shop --reason '...'`");
    expect(text).toContain("next:    finish the stop with `canary rollback checkout -n shop --reason '...'`");

    const done = statusView({ record: record({ ...r, stop: { ...stop, state: 'released', token: 'rollback by alice at 2026-01-15T10:21:00.000Z' } }), liveWeight: 0, lease: null, now: NOW });
    expect(done.unfinishedStop).toBeNull();
    expect(statusExitCode(done)).toBe(3);
    expect(renderStatus(done, NOW)).toContain('  stop:    finished; requested by deploy checkout-20260115T100000Z');
    expect(renderStatus(done, NOW)).toContain('           held by rollback by alice at 2026-01-15T10:21:00.000Z, last updated');
  });

  it('a forward stop left unfinished says it finishes the promotion forward', () => {
    const stop = { state: 'traffic-zero-confirmed' as const, direction: 'forward' as const, requestedBy: 'deploy x', reason: 'all 40 checks passed; finished forward after: ECONNRESET', result: 'promoted' as const, token: 'ci epoch 1', requestedAt: '2026-01-15T10:20:00.000Z', updatedAt: '2026-01-15T10:20:00.000Z' };
    const view = statusView({ record: record({ phase: 'promoting', weight: 0, stop }), liveWeight: 0, lease: null, now: NOW });
    expect(statusExitCode(view)).toBe(5);
    expect(view.attention).toContain('UNFINISHED STOP in state traffic-zero-confirmed, finishing the promotion forward');
    expect(renderStatus(view, NOW)).toContain('stop:    NOT finished, in state traffic-zero-confirmed (forward: finishing the promotion)');
  });

  it('a stop marker on the live route while the record still says progressing is an unfinished stop', () => {
    const view = statusView({ record: record(), liveWeight: 0, live: { stoppedBy: 'canary rollback at 2026-01-15T10:21:10Z: pager', overrides: ['nginx.ingress.kubernetes.io/canary-by-header'] }, lease: { ...lease, expired: true }, now: NOW });
    expect(view.attention).toBe('UNFINISHED STOP (canary rollback at 2026-01-15T10:21:10Z: pager): canary at 0% (read now), and header/cookie routing still sends matching requests to it; nothing is finishing it');
    expect(statusExitCode(view)).toBe(5);
  });

  it('STALLED uses the live weight, not the recorded one', () => {
    const view = statusView({ record: record(), liveWeight: 50, lease: null, now: NOW });
    expect(view.attention).toBe('STALLED: no deploy process holds the lease; the canary keeps 50% of traffic and nothing is judging it');
    expect(view.next).toContain('stalled at 50%');
  });

  it('a finished rollout whose live route was raised by hand after it says so (the record alone said 0)', () => {
    const outcome = { result: 'rolled-back' as const, reason: 'x', at: '', exitCode: 3, traffic: 'canary at 0%, all traffic on stable' };
    const view = statusView({ record: record({ phase: 'rolled-back', weight: 0, outcome }), liveWeight: 30, lease: null, now: NOW });
    expect(view.attention).toBe('the rollout is over (rolled-back) but the canary still takes 30% of traffic, and nothing is judging it');
  });
});
