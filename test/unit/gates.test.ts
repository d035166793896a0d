import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { loadPolicy } from '../../src/policy/loader.js';
import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { targetNames } from '../../src/policy/policy.js';
import { awaitAck, issueControl } from '../../src/rollout/control-issue.js';
import type { Control } from '../../src/rollout/control-types.js';
import { appendControl, applyControl, isControlWrite, MAX_CONTROL_TEXT, MAX_CONTROLS, mergeControls, pendingControls, staleReason } from '../../src/rollout/controls.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import { renderStatus, statusView } from '../../src/report/status-view.js';
import { emptyTallies, type RolloutRecord } from '../../src/rollout/record.js';
import { rolloutRecord } from '../support/records.js';

// Manual gates (issue 19 items 2 and 5): the step schema's `pause:`, and the control logic the
// deploy and the commands share: merge on a conflicting save, the fence on the rollout id, stale views.

const dir = mkdtempSync(join(tmpdir(), 'canary-gates-'));
let files = 0;
/** A policy over the shipped default with these steps (steps replace the default's whole list). */
function policyWith(steps: string) {
  const path = join(dir, `p${(files += 1)}.yaml`);
  writeFileSync(path, `apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  interval: 1m\n  steps:\n${steps}`);
  return loadPolicy(path);
}

function problems(steps: string): string[] {
  try {
    policyWith(steps);
  } catch (err) {
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(2);
    return [...(err as CanaryError).details];
  }
  throw new Error('policy was accepted');
}

describe('step pause in the policy schema', () => {
  it('reads `pause: true` as until promoted, a duration as a bound in ms, false as none', () => {
    const policy = policyWith('    - { weight: 10, duration: 5m, pause: true }\n    - { weight: 50, duration: 5m, pause: 10m }\n    - { weight: 80, duration: 5m, pause: false }\n');
    expect(policy.steps).toEqual([
      { weight: 10, durationMs: 300_000, pause: 'until-promoted' },
      { weight: 50, durationMs: 300_000, pause: 600_000 },
      { weight: 80, durationMs: 300_000 },
    ]);
  });

  it.each([
    ['"soon"', '"soon"'],
    ['"true"', '"true"'],
    ['0s', '"0s"'],
    ['10', '10'],
  ])('refuses pause: %s, naming the field and what was expected', (value, shown) => {
    const found = problems(`    - { weight: 10, duration: 5m, pause: ${value} }\n`);
    expect(found).toEqual([
      `spec.steps[0].pause: expected true (wait for \`canary promote\`), false, or a duration like "10m" (wait that long, or until \`canary promote\`), got ${shown}`,
    ]);
  });
});

/** A `checkout` rollout at 25% in step 2 of 3, run by "ci-run-1", last saved at 10:05. */
function record(id = 'checkout-20260115T100000Z'): RolloutRecord {
  return rolloutRecord({
    id,
    startedBy: 'ci-run-1',
    updatedAt: '2026-01-15T10:05:00.000Z',
    policy: { name: 't', source: 't.yaml', plannedChecks: 3, intervalMs: 60_000, steps: [{ weight: 10, durationMs: 60_000 }, { weight: 25, durationMs: 60_000 }, { weight: 50, durationMs: 60_000 }] },
    tallies: emptyTallies(),
  });
}

const control = (over: Partial<Control> = {}): Control => ({
  id: `c-${Math.random().toString(36).slice(2)}`,
  kind: 'pause',
  by: 'alice@laptop',
  at: '2026-01-15T10:06:00.000Z',
  rolloutId: 'checkout-20260115T100000Z',
  ...over,
});

const ctx = { rolloutId: 'checkout-20260115T100000Z', at: '2026-01-15T10:06:30.000Z', weight: 25, stepIndex: 1 };

describe('controls in the record', () => {
  it("a conflicting save that met only a control takes it in; the deploy's own answers stand", () => {
    const ours = record();
    const answered = control({ id: 'a' });
    appendControl(ours, answered);
    applyControl(ours, ours.controls!.log[0]!, ctx);
    const theirs = structuredClone(record());
    appendControl(theirs, { ...answered });
    appendControl(theirs, control({ id: 'b', kind: 'promote' }));
    expect(isControlWrite(ours, theirs)).toBe(true);
    expect(mergeControls(ours, theirs)).toBe(1);
    expect(ours.controls?.log.map((c) => [c.id, c.ack?.outcome ?? null])).toEqual([
      ['a', 'applied'],
      ['b', null],
    ]);
    expect(pendingControls(ours).map((c) => c.id)).toEqual(['b']);
  });

  it('a record changed by a stop, a rollback, a takeover or another rollout is not a control write', () => {
    const ours = record();
    expect(isControlWrite(ours, { ...record(), phase: 'rolling-back' })).toBe(false);
    expect(isControlWrite(ours, { ...record(), rollback: { reason: 'pager', requestedBy: 'bob', at: ctx.at } })).toBe(false);
    expect(isControlWrite(ours, { ...record(), resumedBy: 'ci-run-2' })).toBe(false);
    expect(isControlWrite(ours, { ...record(), startedBy: 'ci-run-2' })).toBe(false);
    expect(isControlWrite(ours, record('checkout-20260115T110000Z'))).toBe(false);
    expect(isControlWrite(ours, { ...record(), phase: 'promoted' })).toBe(false);
  });

  it('the deploy refuses a control issued against another rollout and changes nothing', () => {
    const r = record();
    const foreign = control({ kind: 'promote-full', rolloutId: 'checkout-19990101T000000Z' });
    appendControl(r, foreign);
    const ack = applyControl(r, foreign, ctx);
    expect(ack).toMatchObject({ outcome: 'refused', weight: 25 });
    expect(ack.message).toContain('issued against rollout checkout-19990101T000000Z');
    expect(r.controls?.promote).toBeUndefined();
    expect(r.controls?.paused).toBeUndefined();
  });

  it('pause, resume and promote set the gate; promote also ends a pause', () => {
    const r = record();
    applyControl(r, control({ kind: 'pause', reason: 'dashboards' }), ctx);
    expect(r.controls?.paused).toMatchObject({ by: 'alice@laptop', reason: 'dashboards', acknowledgedAt: ctx.at });
    const promote = applyControl(r, control({ kind: 'promote', by: 'bob' }), ctx);
    expect(promote.message).toContain('ends the pause by alice@laptop');
    expect(r.controls?.paused).toBeUndefined();
    expect(r.controls?.promote).toMatchObject({ full: false, by: 'bob' });
    expect(applyControl(r, control({ kind: 'resume' }), ctx).message).toContain('was not paused');
  });

  it('a control taken from the record keeps at most MAX_CONTROL_TEXT characters of reason and identity', () => {
    const ours = record();
    const theirs = record();
    appendControl(theirs, control({ id: 'long', by: 'b'.repeat(5000), reason: 'r'.repeat(100_000) }));
    mergeControls(ours, theirs);
    const taken = ours.controls?.log[0];
    expect(taken?.reason).toHaveLength(MAX_CONTROL_TEXT);
    expect(taken?.by).toHaveLength(MAX_CONTROL_TEXT);
  });

  it('the log stays bounded, dropping answered controls first', () => {
    const r = record();
    const first = control({ id: 'unanswered' });
    appendControl(r, first);
    for (let i = 0; i < MAX_CONTROLS + 5; i += 1) {
      const c = control({ id: `c${i}` });
      appendControl(r, c);
      applyControl(r, c, ctx);
    }
    expect(r.controls?.log).toHaveLength(MAX_CONTROLS);
    expect(r.controls?.log[0]?.id).toBe('unanswered');
  });

  it('a command whose view is stale is refused: another rollout, one that is over, stopping or promoting', () => {
    expect(staleReason(record('checkout-20260115T110000Z'), 'pause', 'checkout-20260115T100000Z')).toContain('issued against a view that is out of date');
    expect(staleReason({ ...record(), phase: 'rolled-back' }, 'promote')).toContain('is already over (rolled-back');
    expect(staleReason({ ...record(), phase: 'rolling-back' }, 'promote')).toContain('is stopping');
    expect(staleReason({ ...record(), phase: 'promoting' }, 'pause')).toContain('already promoting');
    // Past the promotion, under spec.postPromotion's watch: only `canary rollback` acts there.
    expect(staleReason({ ...record(), phase: 'watching' }, 'promote')).toContain('post-promotion watch');
    expect(staleReason(record(), 'pause', 'checkout-20260115T100000Z')).toBeNull();
  });
});

describe('issuing a control', () => {
  const cluster = () => new MemoryCluster('shop', targetNames('checkout', {}), 'shop/checkout:1');
  const now = () => '2026-01-15T10:06:00.000Z';

  it('a write that loses to the deploy retries on the same rollout, but never lands on the next one', async () => {
    const store = cluster();
    await store.save(record(), null);
    // The deploy saves between the command's read and its write: the command reads again and retries.
    let raced = false;
    const racing = {
      load: () => store.load(),
      save: async (r: RolloutRecord, v: string | null) => {
        if (!raced) {
          raced = true;
          const cur = await store.load();
          await store.save({ ...cur!.record, weight: 50 }, cur!.version);
        }
        return store.save(r, v);
      },
    };
    const written = await issueControl(racing, { kind: 'pause', by: 'alice', now });
    expect(written.kind).toBe('written');
    expect((await store.load())?.record).toMatchObject({ weight: 50, controls: { log: [{ kind: 'pause', by: 'alice' }] } });

    // Now the record is replaced by the next rollout between the read and the write: refused.
    const next = cluster();
    await next.save(record(), null);
    const replacing = {
      load: () => next.load(),
      save: async (r: RolloutRecord, v: string | null) => {
        const cur = await next.load();
        await next.save(record('checkout-20260115T110000Z'), cur!.version);
        return next.save(r, v);
      },
    };
    const refused = await issueControl(replacing, { kind: 'promote', by: 'alice', now });
    expect(refused).toMatchObject({ kind: 'refused' });
    expect(refused.kind === 'refused' && refused.message).toContain('now holds rollout checkout-20260115T110000Z');
    expect((await next.load())?.record.controls).toBeUndefined();
  });

  it('waiting for the answer ends when the rollout stops, and times out when nobody answers', async () => {
    const store = cluster();
    await store.save(record(), null);
    const written = await issueControl(store, { kind: 'pause', by: 'alice', now });
    if (written.kind !== 'written') throw new Error('not written');
    const clock = new VirtualClock(0);
    expect(await awaitAck(store, written.control, { timeoutMs: 5000, pollMs: 500, clock })).toMatchObject({ kind: 'timeout' });
    const cur = await store.load();
    await store.save({ ...cur!.record, phase: 'rolled-back' }, cur!.version);
    const ended = await awaitAck(store, written.control, { timeoutMs: 5000, pollMs: 500, clock });
    expect(ended).toMatchObject({ kind: 'ended' });
    expect(ended.kind === 'ended' && ended.message).toContain('stopped before acting on it');
  });
});

describe('status of a paused rollout', () => {
  const view = (r: RolloutRecord) => statusView({ record: r, liveWeight: 25, lease: { holder: 'ci-run-1', renewTime: ctx.at, expired: false }, now: Date.parse(ctx.at) });

  it("shows PAUSED with who and why, every control with the deploy's answer, and what moves it on", () => {
    const r = record();
    const pause = control({ kind: 'pause', reason: 'dashboards' });
    appendControl(r, pause);
    applyControl(r, pause, ctx);
    appendControl(r, control({ kind: 'resume', by: 'bob', at: '2026-01-15T10:07:00.000Z' }));
    const text = renderStatus(view(r), Date.parse(ctx.at));
    expect(text).toContain('phase:   progressing — step 2/3 at 25% · PAUSED by alice@laptop at 2026-01-15T10:06:00.000Z (dashboards); checks continue');
    expect(text).toContain('pause by alice@laptop at 2026-01-15T10:06:00.000Z (dashboards): acknowledged at 2026-01-15T10:06:30.000Z (at 25%): paused at 25%');
    expect(text).toContain('resume by bob at 2026-01-15T10:07:00.000Z: not acknowledged yet');
    expect(text).toContain('next:    paused by alice@laptop: checks continue (a breach still rolls back); `canary resume checkout -n shop` moves it forward');
  });

  it("shows a step's own pause, and nothing paused once the rollout is over", () => {
    const r = record();
    r.controls = { log: [], stepPause: { stepIndex: 1, since: ctx.at, until: null } };
    expect(renderStatus(view(r), Date.parse(ctx.at))).toContain("PAUSED (step 2's pause since 2026-01-15T10:06:30.000Z, until `canary promote`)");
    expect(view({ ...r, phase: 'promoted' }).gates).toBeNull();
  });
});
