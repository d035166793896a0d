import { CanaryError, EXIT, messageOf } from '../errors.js';
import {
  describeTraffic,
  finishStop,
  foreignTraffic,
  rollbackHint,
  stopTraffic,
  undoHint,
  type StopFinish,
  type TrafficStop,
} from './abort.js';
import { rolloutIdFor } from './rollout-id.js';
import { unfinishedStop } from './stop-machine.js';
import { operatorStop } from './operator-stop.js';
import { StateConflictError, type IncidentResult, type OwnRouteState } from './ports.js';
import { FINAL_PHASES, RECORD_SCHEMA_VERSION, type OutcomeResult, type RolloutRecord } from './record.js';
import type { OperatorRollbackOptions, OperatorRollbackPorts, RollbackReport } from './operator-rollback-types.js';

// `canary rollback`: the abort asked for by an operator, over the same ports and the same stop
// path (abort.ts) as a deploy's own halt. The CLI only connects, parses flags and prints.

export type { OperatorRollbackOptions, OperatorRollbackPorts, RecordRead, RollbackReport } from './operator-rollback-types.js';

/** A record for a target whose own record was missing or unreadable, so `status` can still tell the truth. */
function replacementRecord(opts: OperatorRollbackOptions, why: string, now: number): RolloutRecord {
  const at = new Date(now).toISOString();
  const { policy, ctx } = opts;
  return {
    schemaVersion: RECORD_SCHEMA_VERSION,
    id: rolloutIdFor(ctx.target, now),
    target: ctx.target,
    namespace: ctx.namespace,
    phase: 'aborted',
    stepIndex: 0,
    weight: 0,
    images: { stable: null, canary: 'unknown' },
    startedBy: `unknown (${why})`,
    startedAt: at,
    updatedAt: at,
    policy: { name: policy.name, source: policy.source, plannedChecks: 0, intervalMs: policy.intervalMs, steps: policy.steps },
    steps: [],
    checks: [],
  };
}

function describeStopped(r: OwnRouteState, after: OwnRouteState | undefined, stableOnly: boolean): string {
  const tail = stableOnly ? ', all traffic on stable' : '';
  const routing = r.overrides.length ? `; header/cookie routing removed (${r.overrides.map((a) => a.replace(/^nginx\.ingress\.kubernetes\.io\//, '')).join(', ')})` : '';
  const now = after ? `${after.weight ?? 0}%` : 'gone';
  if ((r.weight ?? 0) === 0 && r.overrides.length === 0) return `canary Ingress ${r.name} already at 0%${stableOnly ? ': all traffic is on stable' : ''}`;
  return `canary Ingress ${r.name}: weight ${r.weight ?? '?'}% → ${now}${routing}${tail}`;
}

/**
 * Stops the rollout of a target, whatever phase its record is in (or without a record): traffic
 * first, then the record (so a running deploy stops), then stable (set back to its recorded image
 * when a promotion had begun), the canary, the Lease, the Event, the incidents. Idempotent.
 */
export async function operatorRollback(ports: OperatorRollbackPorts, opts: OperatorRollbackOptions): Promise<RollbackReport> {
  const { ctx, names, clock } = opts;
  const actions: string[] = [];
  const say = (line: string) => {
    actions.push(line);
    opts.say(line);
  };
  const marker = `rolled back by ${opts.requestedBy} at ${new Date(clock.now()).toISOString()}`;

  // 1. Traffic, before anything else: no record read, no policy sinks, no module loading.
  const stop = await stopTraffic({ router: ports.router, clock, marker, deadlineMs: opts.deadlineMs, callTimeoutMs: opts.callTimeoutMs, onRetry: say });
  if (!stop.confirmed) {
    // A rejection that retrying cannot fix (403, a webhook) is the operator's to see as it is.
    if (stop.permanent && stop.error instanceof CanaryError) throw stop.error;
    throw new CanaryError('unreachable', `${describeTraffic(stop, ctx)}; nothing else was done (the canary keeps its pods, the record and Lease are untouched) until a read shows 0%`);
  }
  // The Lease as the stop found it: only this one is deleted at the end (never a newer holder's).
  const leaseSeen = await ports.lease.observe({ timeoutMs: opts.callTimeoutMs }).catch(() => undefined);
  const after = stop.after ?? { ours: [], foreign: [] };
  const foreign = foreignTraffic(after);
  const stableOnly = foreign.length === 0;
  // What the routes held before this command's first write that got through.
  const found = new Map((stop.before ?? []).map((r) => [r.name, r]));
  for (const r of opts.firstFound ?? []) found.set(r.name, r);
  for (const r of [...found.values()].sort((a, b) => a.name.localeCompare(b.name))) say(describeStopped(r, after.ours.find((a) => a.name === r.name), stableOnly));
  for (const f of after.foreign) {
    say(
      `canary Ingress ${f.name} is not ours (no canary-cli labels for ${ctx.target}) and sends ${f.weight ?? '?'}%${f.overrides.length ? ' and header/cookie-matched requests' : ''} to Service ${names.canaryService}: left as it is`,
    );
  }
  const traffic = describeTraffic(stop, ctx);
  const inForce = (state: typeof after) => {
    if (state.ours.length) say(`weight in force (re-read): ${state.ours.map((r) => `${r.name} ${r.weight ?? 0}%`).join(', ')}`);
  };
  let ingresses = after.ours.map((r) => ({ name: r.name, weight: r.weight ?? 0 }));
  const foreignReport = after.foreign.map((f) => ({ name: f.name, weight: f.weight }));
  let base = { target: ctx.target, namespace: ctx.namespace, actions, traffic, ingresses, foreign: foreignReport };

  // A stop left unfinished by another stopper (a crashed deploy, a rollback elsewhere): the stop
  // machine takes it on from the state the record holds, with this command's token.
  // A rollout still under way gets the operator's stop requested from the machine, which drives it
  // to the end like any other stop.
  const pending = await ports.loadRecord();
  const live = pending.kind === 'found' ? pending.stored.record : null;
  // A promotion under its post-promotion watch gets the same stop: stable goes back to the image it
  // ran before the rollout (the machine's rollback after promotion).
  if (live && (unfinishedStop(live) || (!live.stop && !FINAL_PHASES.includes(live.phase)))) {
    const taken = await operatorStop(ports, opts, leaseSeen, say, !unfinishedStop(live), stableOnly);
    if (taken) {
      // What the routes hold now, read again: what the report says is what the API holds.
      const now = await ports.router.inspect({ timeoutMs: opts.callTimeoutMs }).catch(() => null);
      if (now) inForce(now);
      return { ...base, ...(now && { ingresses: now.ours.map((r) => ({ name: r.name, weight: r.weight ?? 0 })) }), ...taken };
    }
  }

  // 2. The record: mark the abort so a running deploy stops, and status tells the story.
  const now = clock.now();
  const at = new Date(now).toISOString();
  let record: RolloutRecord | null = null;
  let version: string | null = null;
  let alreadyRolledBack = false;
  let promoting = false;
  for (let attempt = 0; attempt < 5 && record === null; attempt += 1) {
    const read = await ports.loadRecord();
    if (read.kind === 'found' && read.stored.record.phase === 'rolled-back-after-promotion') {
      // Already set back (by the watch, or by an earlier rollback): nothing more to do.
      inForce(after);
      const r = read.stored.record;
      say(`rollout ${r.id} was already rolled back after promotion (${r.outcome?.reason ?? 'no reason recorded'}); stable runs ${r.images.stable ?? 'the previous image'}`);
      return { ...base, result: 'rolled-back-after-promotion', stable: null, alreadyRolledBack: true, incidentUrl: null, record: r, exitCode: EXIT.ok };
    }
    if (read.kind === 'found' && read.stored.record.phase === 'promoted') {
      // Nothing to abort: the canary became stable. Traffic was still made safe above.
      inForce(after);
      const r = read.stored.record;
      const image = (await ports.workloads.stableImage().catch(() => null)) ?? r.images.canary;
      say(
        `rollout ${r.id} was promoted at ${r.outcome?.at ?? r.updatedAt}; stable runs ${image}; canary rollback cannot undo a promotion: run ${undoHint(ctx, names.stableDeployment)}`,
      );
      return { ...base, result: 'promoted', traffic: `${traffic} (which runs the promoted image)`, stable: null, alreadyRolledBack: false, incidentUrl: null, record: r, exitCode: EXIT.unexpected };
    }
    if (read.kind !== 'found' && after.ours.length === 0) {
      // Nothing of ours anywhere: inventing an aborted record would make status lie.
      say(`no canary Ingress of ours and no rollout record exist for ${ctx.target} in namespace ${ctx.namespace}: nothing to roll back`);
      const code = stableOnly ? EXIT.ok : EXIT.unexpected;
      if (!stableOnly) say(`traffic is NOT all on stable: ${traffic}`);
      return { ...base, result: 'nothing-to-roll-back', stable: null, alreadyRolledBack: false, incidentUrl: null, record: null, exitCode: code };
    }
    const why = read.kind === 'missing' ? 'no rollout record existed' : read.kind === 'corrupt' ? `the previous record was corrupt: ${read.why}` : '';
    const next = read.kind === 'found' ? structuredClone(read.stored.record) : replacementRecord(opts, why, now);
    const expected = read.kind === 'found' ? read.stored.version : read.kind === 'corrupt' ? read.version : null;
    promoting = next.phase === 'promoting' || (next.rollback?.stableRestore !== undefined && !next.rollback.stableRestore.done);
    alreadyRolledBack = read.kind === 'found' && (next.phase === 'rolled-back' || next.phase === 'aborted') && next.weight === 0;
    next.rollback = next.rollback ?? { reason: opts.reason, requestedBy: opts.requestedBy, at };
    if (promoting && !next.rollback.stableRestore) next.rollback.stableRestore = { image: next.images.stable, done: false, message: 'pending' };
    if (!alreadyRolledBack || !next.outcome) {
      next.phase = 'aborted';
      next.weight = 0;
      next.updatedAt = at;
      next.outcome = { result: 'aborted', reason: `rolled back by ${opts.requestedBy}: ${opts.reason}`, at, exitCode: EXIT.aborted, traffic };
    }
    try {
      version = await ports.saveRecord(next, expected);
      record = next;
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      // A running deploy wrote in between: read again and mark its newer record.
    }
  }
  if (!record) throw new CanaryError('unexpected', `the rollout record kept changing while recording the rollback; ${traffic}; run the command again`);
  // 3. Read again before anything acts on "0%": a hand edit (or a raise that was already past its
  // fence) between our write and the record shows up here and is written back to 0.
  const settle = await stopTraffic({ router: ports.router, clock, marker, deadlineMs: opts.deadlineMs, callTimeoutMs: opts.callTimeoutMs, onRetry: say });
  for (const r of settle.before ?? []) {
    if ((r.weight ?? 0) !== 0 || r.overrides.length > 0) say(`canary Ingress ${r.name} was raised to ${r.weight ?? '?'}% after our first write: set to 0% again`);
  }
  if (!settle.confirmed) {
    if (settle.permanent && settle.error instanceof CanaryError) throw settle.error;
    throw new CanaryError('unreachable', `${describeTraffic(settle, ctx)}; the abort is recorded, nothing else was done (the canary keeps its pods) until a read shows 0%`);
  }
  const settled = settle.after ?? after;
  inForce(settled);
  ingresses = settled.ours.map((r) => ({ name: r.name, weight: r.weight ?? 0 }));
  base = { ...base, ingresses };
  say(alreadyRolledBack ? `record ${record.id}: already rolled back (${record.outcome?.reason ?? 'no reason recorded'})` : `record ${record.id}: aborted by ${opts.requestedBy}: ${opts.reason}`);

  // 4. Stable back to its image if a promotion had begun; the canary down (unless a route that
  // is not ours still sends it traffic); stable verified.
  const restore = record.rollback?.stableRestore;
  const finish: StopFinish = await finishStop({
    workloads: ports.workloads,
    clock,
    callTimeoutMs: opts.callTimeoutMs,
    ...(promoting && restore && { restoreStable: { image: restore.image, stableDeployment: names.stableDeployment } }),
    canaryStillRouted: !stableOnly,
    marker,
    ctx,
    say: (_level, line) => say(line),
  });
  if (finish.scaled === 'not-found') say(`Deployment ${names.canaryDeployment} not found: no canary pods to scale down`);
  else if (finish.scaled === 'already-zero') say(`Deployment ${names.canaryDeployment} already at 0 replicas`);
  else if (finish.scaled === 'scaled-to-zero') say(`Deployment ${names.canaryDeployment} scaled to 0`);
  const stable = finish.stable;
  if (stable) say(stable.available ? `stable verified: ${stable.message}` : stable.message.startsWith('stable could not') ? `STABLE COULD NOT BE VERIFIED: ${stable.message.replace(/^stable could not be verified: /, '')}` : `STABLE IS NOT AVAILABLE: ${stable.message}`);

  // 4. The dead deploy's Lease no longer blocks the next deploy (a live one has seen the stop).
  try {
    if (leaseSeen === undefined) throw new Error('it could not be read when the stop began');
    const cleared = await ports.lease.clear(leaseSeen, { timeoutMs: opts.callTimeoutMs });
    if (cleared.result === 'deleted') say(`Lease ${ctx.target}-canary of the stopped deploy deleted: the next deploy can start at once`);
    else if (cleared.result === 'kept') say(`Lease ${ctx.target}-canary left alone: it is held by ${cleared.holder} and changed since this rollback read it (a live deploy releases it itself; a deploy started since keeps its own)`);
  } catch (err) {
    say(`could not delete the deploy's Lease (a new deploy waits for it to expire): ${messageOf(err)}`);
  }
  const problem = await ports.event('CanaryRolledBack', `rolled back by ${opts.requestedBy}: ${opts.reason}; ${traffic}`);
  if (problem) say(problem);

  // 5. What stable looked like goes into the record too, for status and the incident.
  if (!alreadyRolledBack || finish.restore) {
    const verification = {
      stableVerified: stable?.available ?? false,
      stableMessage: stable?.message ?? 'stable could not be verified',
      ...(finish.restore && { stableRestore: finish.restore }),
    };
    const saved = await saveVerification(ports, record, version, verification);
    if (saved) record = saved;
    else say(`could not store the stable verification in the record (it kept changing); ${traffic}`);
  }

  // 6. Incidents last, after traffic is safe; only for the rollback this command made.
  let incidentUrl: string | null = null;
  if (!alreadyRolledBack && opts.incidents) {
    const results = await ports.openIncidents(record).catch((err: unknown): IncidentResult[] => [{ sink: 'incidents', ok: false, message: messageOf(err) }]);
    for (const r of results) say(r.ok ? `incident opened in ${r.sink}${r.url ? `: ${r.url}` : ''}` : r.sink === 'incidents' ? `incident not opened: ${r.message}` : `incident sink ${r.sink} failed: ${r.message}`);
    incidentUrl = results.find((r) => r.ok && r.url)?.url ?? null;
  }

  // Traffic is safe; what can still be wrong is stable (not available, or not set back) or a
  // route that is not ours. Each is exit 1 with the line that says so above.
  const restoreFailed = finish.restore !== undefined && !finish.restore.done;
  const exitCode = stable?.available === true && !restoreFailed && stableOnly ? EXIT.ok : EXIT.unexpected;
  const result: OutcomeResult = alreadyRolledBack ? (record.outcome?.result ?? 'aborted') : 'aborted';
  return { ...base, result, stable, alreadyRolledBack, incidentUrl, record, exitCode };
}

type Verification = Pick<NonNullable<RolloutRecord['rollback']>, 'stableVerified' | 'stableMessage' | 'stableRestore'>;

/** Stores what stable looked like; a deploy stopping may write in between, so merge into its record. */
async function saveVerification(ports: OperatorRollbackPorts, record: RolloutRecord, version: string | null, v: Verification): Promise<RolloutRecord | null> {
  let next = structuredClone(record);
  let expected = version;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    next.rollback = { ...(next.rollback ?? { reason: '', requestedBy: '', at: record.updatedAt }), ...v };
    try {
      await ports.saveRecord(next, expected);
      return next;
    } catch (err) {
      if (!(err instanceof StateConflictError)) return null;
      const theirs = err.current;
      if (!theirs || theirs.record.id !== record.id) return null;
      next = structuredClone(theirs.record);
      expected = theirs.version;
    }
  }
  return null;
}

export type { TrafficStop };
export { rollbackHint };
