import { resumeHint, rollbackHint } from '../rollout/abort.js';
import { countsOf, FINAL_PHASES, type CheckCounts, type RolloutRecord, type StopState } from '../rollout/record.js';
import { formatDuration } from '../policy/units.js';
import { renderTable, resultRows } from './check-format.js';
import { renderWatch, watchNext, watchView, type WatchView } from './watch-view.js';
import { gatesView, pausedNext, pausedWords, renderGates, type GatesView } from './control-view.js';

export interface LeaseView {
  holder: string;
  renewTime: string | null;
  expired: boolean;
}

export interface StatusInput {
  record: RolloutRecord;
  /** The weight on our canary Ingress right now; null when it does not exist. */
  liveWeight: number | null;
  /** What else that read showed: a stop marker written on it, header/cookie routing still on it. */
  live?: { stoppedBy: string | null; overrides: readonly string[] };
  lease: LeaseView | null;
  now: number;
}

export interface StatusView {
  target: string;
  namespace: string;
  id: string;
  phase: RolloutRecord['phase'];
  step: { index: number; of: number; weight: number } | null;
  weight: { recorded: number; live: number | null; differs: boolean };
  images: RolloutRecord['images'];
  startedAt: string;
  startedBy: string;
  /** The run driving the rollout since a `--resume`, when one did. */
  resumedBy: string | null;
  /** The rollout this one retried (`deploy --retry`), when it did. */
  retryOf: string | null;
  /** The last smoke-test run (spec.smokeTests): when, how many passed, which failed. */
  smoke: { phase: string; at: string; passed: number; total: number; failed: string[] } | null;
  /** The last run of each policy hook (spec.hooks): where, and how it ended. */
  hooks: { name: string; at: string; ok: boolean; status: string }[];
  age: string;
  /** Over every check of the rollout, including those the record no longer keeps in full. */
  checks: CheckCounts;
  lastCheck: RolloutRecord['checks'][number] | null;
  lease: LeaseView | null;
  outcome: RolloutRecord['outcome'] | null;
  /**
   * Something needs a person now, in one line: the canary still takes traffic and nothing judges
   * it (a finished rollout that left its weight, or a rollout whose deploy process is gone).
   * Null when all is well. The exit code stays what the phase says; this is for the eye.
   */
  attention: string | null;
  /**
   * A stop was requested (the record is rolling back, or a stop marker is on the canary route)
   * and is not finished: what the last read showed, who (if anyone) is finishing it, and the
   * command that finishes it. Null otherwise. `status` exits 5 while this is set.
   */
  unfinishedStop: UnfinishedStopView | null;
  /** The stop machine's record (`record.stop`), finished or not: its state, who asked and why, who drives it. */
  stop: StopView | null;
  /** spec.postPromotion: the watch after promotion (time left, latest figures, baseline), or null. */
  watch: WatchView | null;
  /** Operator controls and manual gates: PAUSED, who promoted/paused/resumed, the deploy's answers. */
  gates: GatesView | null;
  next: string;
}

export interface StopView {
  state: StopState;
  /** 'forward': past a promotion's point of no return, the stop finishes the promotion. */
  direction: 'back' | 'forward';
  requestedBy: string;
  reason: string;
  requestedAt: string;
  /** The stopper that drove it last (holder identity + epoch): who holds the stop. */
  heldBy: string;
  updatedAt: string;
}

export interface UnfinishedStopView {
  /** Where traffic is, from the read `status` just made. */
  traffic: string;
  finishing: string | null;
  command: string;
  /** The machine's state, when the record holds one (older records: inferred from the phase or the route's marker). */
  state?: StopState;
  requestedBy?: string;
  reason?: string;
  heldBy?: string;
  updatedAt?: string;
}

function ago(fromIso: string | null, now: number): string {
  if (!fromIso) return 'unknown';
  const ms = Math.max(0, now - Date.parse(fromIso));
  return ms < 1000 ? 'just now' : `${formatDuration(Math.floor(ms / 1000) * 1000)} ago`;
}

/**
 * The canary weight in force: the live Ingress when we could read it (none of ours: 0), else the
 * record. 0 when nothing goes to the canary.
 */
function leftWeight(input: StatusInput): number {
  return input.liveWeight ?? 0;
}

const isStalled = (input: StatusInput) => !FINAL_PHASES.includes(input.record.phase) && (!input.lease || input.lease.expired);

/** Where traffic is, from the read `status` just made (never from the record alone). */
function liveTraffic(input: StatusInput): string {
  const { liveWeight, live } = input;
  if (liveWeight === null) return 'no canary Ingress of ours exists (read now): no canary traffic';
  const routing = live?.overrides.length ? ', and header/cookie routing still sends matching requests to it' : '';
  return `canary at ${liveWeight}% (read now)${routing}`;
}

function stopView(record: RolloutRecord): StopView | null {
  const s = record.stop;
  if (!s) return null;
  return {
    state: s.state,
    direction: s.direction === 'forward' ? 'forward' : 'back',
    requestedBy: s.requestedBy,
    reason: s.reason,
    requestedAt: s.requestedAt,
    heldBy: s.token,
    updatedAt: s.updatedAt,
  };
}

/**
 * A stop requested and not finished, or null. The record's stop machine says so first (whatever
 * the phase: a stop recorded but not released is not finished); without one, a record rolling
 * back or a stop marker on the route does.
 */
function unfinishedStop(input: StatusInput): StatusView['unfinishedStop'] {
  const { record, live } = input;
  const machine = record.stop && record.stop.state !== 'released' ? record.stop : null;
  if (!machine) {
    if (record.stop || FINAL_PHASES.includes(record.phase)) return null;
    const marked = live?.stoppedBy ? live.stoppedBy : null;
    if (record.phase !== 'rolling-back' && !marked) return null;
  }
  const ctx = { target: record.target, namespace: record.namespace };
  const holder = input.lease && !input.lease.expired ? input.lease.holder : null;
  return {
    traffic: liveTraffic(input),
    finishing: holder ? `the deploy holding the lease (${holder}) is still stopping it` : null,
    command: rollbackHint(ctx),
    ...(machine && { state: machine.state, requestedBy: machine.requestedBy, reason: machine.reason, heldBy: machine.token, updatedAt: machine.updatedAt }),
  };
}

function attention(input: StatusInput): string | null {
  const { record } = input;
  const stop = unfinishedStop(input);
  if (stop) {
    if (stop.state) {
      const forward = record.stop?.direction === 'forward' ? ', finishing the promotion forward' : '';
      return `UNFINISHED STOP in state ${stop.state}${forward} (requested by ${stop.requestedBy}: ${stop.reason}): ${stop.traffic}; ${stop.finishing ?? 'nothing is finishing it'}`;
    }
    const why = record.rollback?.reason ?? (input.live?.stoppedBy || 'a stop was requested');
    return `UNFINISHED STOP (${why}): ${stop.traffic}; ${stop.finishing ?? 'nothing is finishing it'}`;
  }
  if (FINAL_PHASES.includes(record.phase)) {
    const left = leftWeight(input);
    return left > 0 ? `the rollout is over (${record.phase}) but the canary still takes ${left}% of traffic, and nothing is judging it` : null;
  }
  if (isStalled(input)) {
    const share = input.liveWeight === null ? 'no canary Ingress of ours exists (read now)' : `the canary keeps ${input.liveWeight}% of traffic`;
    return `STALLED: no deploy process holds the lease; ${share} and nothing is judging it`;
  }
  return null;
}

/** What an operator should expect next, in one sentence. */
function nextHint(input: StatusInput): string {
  const { record } = input;
  const plan = record.policy.steps;
  // Hints name the namespace, so pasted as printed they act on this rollout, not on `default`.
  const ctx = { target: record.target, namespace: record.namespace };
  const resumeOrStop = `continue it with \`${resumeHint(ctx, record.images.canary)}\` or stop it with \`${rollbackHint(ctx)}\``;
  const stop = unfinishedStop(input);
  if (stop) {
    return stop.finishing
      ? `${stop.finishing}; if it does not finish, finish the stop with \`${stop.command}\``
      : `finish the stop with \`${stop.command}\` (it sets every canary route of ours to 0%, reads it back, verifies stable, scales the canary down, records it and releases the Lease)`;
  }
  if (FINAL_PHASES.includes(record.phase)) {
    const left = leftWeight(input);
    // `--on-cancel leave`, or a forced exit, ends the rollout with the canary still routed.
    if (left > 0) {
      return `the canary still takes ${left}% of traffic and nothing is judging it: run \`${rollbackHint({ target: record.target, namespace: record.namespace })}\``;
    }
    if (record.phase === 'promoted') return `nothing: stable runs ${record.images.stable ?? record.images.canary}`;
    // The record says traffic was left on the canary, but the Ingress has been set to 0% since.
    const traffic = record.weight > 0 ? 'the canary Ingress is at 0% now' : (record.outcome?.traffic ?? 'canary at 0%');
    return `nothing: ${traffic}; fix the cause and deploy again`;
  }
  if (isStalled(input)) return `no deploy process holds the lease: the rollout is stalled at ${input.liveWeight ?? 0}%; ${resumeOrStop}`;
  const paused = pausedNext(gatesView(record), ctx);
  if (paused) return paused;
  if (record.phase === 'initializing') return 'the canary Deployment is starting; the first step follows when it is ready';
  const watch = record.phase === 'watching' ? watchView(record, input.now) : null;
  if (watch) return watchNext(record, watch);
  if (record.phase === 'promoting') return `stable is being updated to ${record.images.canary}; then the canary route goes to 0%`;
  const step = plan[record.stepIndex];
  if (!step) return 'the last step is finishing';
  const planned = Math.max(1, Math.floor(step.durationMs / record.policy.intervalMs));
  const done = countsOf(record).byStep(record.stepIndex).run;
  const after = plan[record.stepIndex + 1];
  const then = after ? `${after.weight}%` : 'promotion';
  const left = Math.max(0, planned - done);
  return left > 0
    ? `${left} more passing check${left === 1 ? '' : 's'} at ${step.weight}% (one every ${formatDuration(record.policy.intervalMs)}), then ${then}`
    : `step ${record.stepIndex + 1} is held until a check passes, then ${then}`;
}

function pickCounts(c: CheckCounts): CheckCounts {
  return { run: c.run, passed: c.passed, failed: c.failed, inconclusive: c.inconclusive, pending: c.pending };
}

export function statusView(input: StatusInput): StatusView {
  const { record, liveWeight, now } = input;
  const inSteps = record.phase === 'progressing' || record.phase === 'initializing';
  return {
    target: record.target,
    namespace: record.namespace,
    id: record.id,
    phase: record.phase,
    step: inSteps ? { index: record.stepIndex + 1, of: record.policy.steps.length, weight: record.policy.steps[record.stepIndex]?.weight ?? record.weight } : null,
    weight: { recorded: record.weight, live: liveWeight, differs: liveWeight !== null && liveWeight !== record.weight },
    images: record.images,
    startedAt: record.startedAt,
    startedBy: record.startedBy,
    resumedBy: record.resumedBy ?? null,
    retryOf: record.retryOf ?? null,
    smoke: record.smokeTests
      ? {
          phase: record.smokeTests.phase,
          at: record.smokeTests.at,
          passed: record.smokeTests.results.filter((r) => r.ok).length,
          total: record.smokeTests.results.length,
          failed: record.smokeTests.results.filter((r) => !r.ok).map((r) => r.name),
        }
      : null,
    hooks: (record.hooks ?? []).map((h) => ({ name: h.name, at: h.at, ok: h.ok, status: h.status })),
    age: ago(record.startedAt, now),
    checks: pickCounts(countsOf(record).total),
    lastCheck: record.checks.at(-1) ?? null,
    lease: input.lease,
    outcome: record.outcome ?? null,
    attention: attention(input),
    unfinishedStop: unfinishedStop(input),
    watch: watchView(record, now),
    gates: gatesView(record),
    stop: stopView(record),
    next: nextHint(input),
  };
}

export function renderStatus(view: StatusView, now: number, paint: { bold: (s: string) => string; warn: (s: string) => string } = { bold: (s) => s, warn: (s) => s }): string {
  const weight =
    view.weight.live === null
      ? `${view.weight.recorded}% recorded; no canary Ingress of ours exists now`
      : view.weight.differs
        ? paint.warn(`${view.weight.recorded}% recorded, but ${view.weight.live}% live on the Ingress: they differ (someone changed the Ingress, or the deploy died between the two writes)`)
        : `${view.weight.live}% (recorded and live agree)`;
  const lines = [
    paint.bold(`${view.target} (namespace ${view.namespace}) · rollout ${view.id}`),
    // Above everything else: a rollout nobody is watching must not read like a healthy one.
    ...(view.attention ? [paint.warn(`  ⚠ ${view.attention}`)] : []),
    `  phase:   ${view.phase}${view.step ? ` — step ${view.step.index}/${view.step.of} at ${view.step.weight}%` : ''}${pausedWords(view.gates)}`,
    `  weight:  ${weight}`,
    `  images:  stable ${view.images.stable ?? 'unknown'} · canary ${view.images.canary}`,
    `  started: ${view.age} (${view.startedAt}) by ${view.startedBy}`,
    ...(view.resumedBy ? [`  resumed: by ${view.resumedBy}`] : []),
    ...(view.retryOf ? [`  retry:   of rollout ${view.retryOf} (started again from the first step)`] : []),
    ...(view.smoke ? [`  smoke:   ${view.smoke.passed}/${view.smoke.total} passed ${view.smoke.phase} (${view.smoke.at})${view.smoke.failed.length ? `; failed: ${view.smoke.failed.join(', ')}` : ''}`] : []),
    ...(view.hooks.length ? [`  hooks:   ${view.hooks.map((h) => `${h.name} ${h.ok ? 'passed' : 'FAILED'} at ${h.at} (${h.status})`).join('; ')}`] : []),
  ];
  if (view.lease) {
    lines.push(`  lease:   ${view.lease.expired ? paint.warn('expired') : 'held'} by ${view.lease.holder}, renewed ${ago(view.lease.renewTime, now)}`);
  }
  if (view.stop) {
    const st = view.stop;
    const way = st.direction === 'forward' ? ' (forward: finishing the promotion)' : '';
    const done = st.state === 'released' ? 'finished' : paint.warn(`NOT finished, in state ${st.state}`);
    lines.push(
      `  stop:    ${done}${way}; requested by ${st.requestedBy} at ${st.requestedAt}: ${st.reason}`,
      `           held by ${st.heldBy}, last updated ${ago(st.updatedAt, now)} (${st.updatedAt})${st.state === 'released' ? '' : `; finish it with \`${view.unfinishedStop?.command ?? rollbackHint({ target: view.target, namespace: view.namespace })}\``}`,
    );
  }
  if (view.outcome) {
    const { result, reason, traffic } = view.outcome;
    lines.push(`  outcome: ${reason.startsWith(`${result}:`) ? reason : `${result}: ${reason}`}`, `           traffic: ${traffic}`);
  }
  if (view.watch) lines.push(...renderWatch(view.watch));
  lines.push(...renderGates(view.gates));
  lines.push(`  checks:  ${view.checks.run} run: ${view.checks.passed} passed, ${view.checks.failed} failed, ${view.checks.inconclusive} inconclusive, ${view.checks.pending} pending`);
  const last = view.lastCheck;
  if (last) {
    lines.push(`  last check #${last.index} at ${last.at} (${last.weight}%): ${last.verdict.toUpperCase()}`);
    lines.push(...renderTable(resultRows(last.results)).map((row) => `    ${row}`));
    for (const r of last.results.filter((x) => x.verdict === 'fail' || (x.critical && (x.verdict === 'inconclusive' || x.verdict === 'pending')))) {
      lines.push(`    ${r.verdict}: ${r.metric}: ${r.reason}`);
    }
  }
  lines.push(view.attention ? paint.warn(`  next:    ${view.next}`) : `  next:    ${view.next}`);
  return lines.join('\n');
}
