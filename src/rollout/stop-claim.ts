import { CanaryError, EXIT } from '../errors.js';
import { StateConflictError, type StoredRecord } from './ports.js';
import { isControlWrite, mergeControls } from './controls.js';
import { FINAL_PHASES, STOP_STATES, type RolloutRecord, type StopProgress, type StopState } from './record.js';
import { bounded, iso, StopLostError, type OwnRecord, type StopMachinePorts, type Stopper, type StopRequest } from './stop-types.js';

// How a stopper makes a stop its own: the write that puts (or keeps) `record.stop` with its token.
// `claim` is for a stopper that reads the record first (`canary rollback`, `--resume`);
// `claimOwn` for the deploy itself, whose traffic already went to 0% before its record is written.

const later = (a: StopState, b: StopState): StopState => (STOP_STATES.indexOf(a) >= STOP_STATES.indexOf(b) ? a : b);

/**
 * A promotion under its post-promotion watch: stable runs the new image with all traffic, so a
 * stop sets stable back to the image it ran before the rollout (a rollback after promotion).
 */
export const watchedPromotion = (record: RolloutRecord) =>
  // A `rolling-back` record with a watch and no stop was left by the watch's rollback before it was the machine's.
  record.watch !== undefined && (record.phase === 'watching' || (record.phase === 'rolling-back' && !record.stop));

/**
 * An operator's stop of a watched promotion keeps the rollback-after-promotion story (status and
 * the record tell it apart from one during the canary) with the operator's exit code, 4.
 */
function asOperatorRequest(record: RolloutRecord, request: StopRequest, op: NonNullable<Stopper['asOperator']>): StopRequest {
  if (!watchedPromotion(record) || request.result !== 'aborted') return request;
  return { ...request, reason: afterPromotionReason(op), result: 'rolled-back-after-promotion', exitCode: EXIT.aborted };
}

const afterPromotionReason = (op: NonNullable<Stopper['asOperator']>) => `rolled back after promotion by ${op.requestedBy}: ${op.why}`;

/** The watch's own account of who set stable back (the watch itself, or an operator). */
function markWatch(record: RolloutRecord, byOperator: boolean, who: string): void {
  if (!record.watch) return;
  record.watch.result = byOperator ? 'rolled-back-by-operator' : 'rolled-back';
  record.watch.rolledBackBy = bounded(who);
}

function freshStop(record: RolloutRecord, stopper: Stopper, request: StopRequest, state: StopState, at: string): StopProgress {
  // Outside a promotion stable was never touched; a forward stop never sets it back.
  const promoting = request.direction !== 'forward' && record.promotion !== undefined && record.promotion !== 'routing-to-canary';
  const afterPromotion = request.result === 'rolled-back-after-promotion' && record.watch !== undefined;
  return {
    state,
    requestedBy: bounded(request.requestedBy),
    reason: bounded(request.reason),
    result: request.result,
    ...(request.direction && { direction: request.direction }),
    ...(request.exitCode !== undefined && { exitCode: request.exitCode }),
    token: stopper.token,
    requestedAt: at,
    updatedAt: at,
    ...(afterPromotion ? { restoreImage: record.watch!.previousImage } : promoting && { restoreImage: record.images.stable }),
  };
}

/** A rollback begins: the phase says so; the rollback is recorded only once a read showed 0% (`recordRollback`). */
function beginStop(record: RolloutRecord, request: StopRequest, at: string, recordRollback: boolean, byOperator: boolean): void {
  if (request.direction === 'forward') return;
  record.phase = 'rolling-back';
  if (request.result === 'rolled-back-after-promotion') markWatch(record, byOperator, request.rollbackBy ?? request.requestedBy);
  if (recordRollback) record.rollback ??= { reason: bounded(request.reason), requestedBy: bounded(request.rollbackBy ?? request.requestedBy), at };
}

/** The stop (or the story) a record tells that is not this stopper's. */
function ownerOf(record: RolloutRecord): StopLostError {
  const rb = record.rollback;
  // An operator's `canary rollback` (its stop, or a record it wrote without one) is reported as theirs.
  const operators = record.stop && rb && (record.stop.result === 'aborted' || record.watch?.result === 'rolled-back-by-operator') && record.stop.requestedBy === rb.requestedBy;
  if (record.stop && !operators) return new StopLostError(record.stop.token);
  if (rb) {
    const words = `rolled back by an operator by ${rb.requestedBy}: ${rb.reason}`;
    return Object.assign(new StopLostError(words), { operatorAbort: words });
  }
  return new StopLostError(`another process (the record now says ${record.phase}, started by ${record.startedBy})`);
}

const mine = (stopper: Stopper, token: string | undefined) => token === stopper.token || (token !== undefined && (stopper.supersedes ?? []).includes(token));

/** `canary rollback`, `--resume`: the stop put on the record as read (or taken on where it stands). */
export async function claim(ports: StopMachinePorts, stopper: Stopper, asked: StopRequest): Promise<StoredRecord | null> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const found = await ports.store.load();
    if (!found) return null;
    const record = structuredClone(found.record);
    const request = stopper.asOperator ? asOperatorRequest(record, asked, stopper.asOperator) : asked;
    const at = iso(ports.clock);
    if (record.stop) {
      if (record.stop.token === stopper.token) return found;
      record.stop = { ...record.stop, token: stopper.token, updatedAt: at };
      // An operator who takes a stop on before it is recorded owns its story (who, why, result);
      // a forward stop stays forward (a promotion past its point of no return is not undone here).
      if (stopper.asOperator && record.stop.direction !== 'forward' && STOP_STATES.indexOf(record.stop.state) < STOP_STATES.indexOf('recorded')) {
        const { exitCode: _dropped, ...kept } = record.stop;
        if (kept.result === 'rolled-back-after-promotion') {
          // Still a rollback after promotion (stable goes back to the same image), now the operator's.
          record.stop = { ...kept, requestedBy: bounded(request.requestedBy), reason: bounded(afterPromotionReason(stopper.asOperator)), exitCode: EXIT.aborted };
          record.rollback = { ...record.rollback, reason: bounded(stopper.asOperator.why), requestedBy: bounded(stopper.asOperator.requestedBy), at };
          markWatch(record, true, stopper.asOperator.requestedBy);
        } else {
          record.stop = { ...kept, requestedBy: bounded(request.requestedBy), reason: bounded(request.reason), result: request.result };
          record.rollback ??= { reason: bounded(stopper.asOperator.why), requestedBy: bounded(stopper.asOperator.requestedBy), at };
        }
      }
    } else {
      if (FINAL_PHASES.includes(record.phase)) return found;
      record.stop = freshStop(record, stopper, request, 'requested', at);
      // The record's rollback keeps the operator's own words (the stop's reason says who, too).
      if (stopper.asOperator) record.rollback ??= { reason: bounded(stopper.asOperator.why), requestedBy: bounded(stopper.asOperator.requestedBy), at };
      beginStop(record, request, at, true, stopper.asOperator !== undefined);
    }
    record.updatedAt = at;
    try {
      const version = await ports.store.save(record, found.version);
      return { record, version };
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
    }
  }
  throw new CanaryError('unexpected', 'the rollout record kept changing while the stop was being requested; run the command again');
}

/**
 * The deploy's own stop, after its 0% write: its record (with what it has not saved yet) gets the
 * stop in the state the write reached. A conflict is someone else — an operator's rollback, another
 * stopper, a process that took the rollout over — unless it is this process's own save in between,
 * or a stop this stopper supersedes; then the claim is made again on what is there now.
 */
export async function claimOwn(ports: StopMachinePorts, stopper: Stopper, request: StopRequest, own: OwnRecord, traffic: string | null): Promise<StoredRecord> {
  let base: { record: RolloutRecord; version: string | null } = own.current();
  const reached: StopState = traffic === null ? 'requested' : 'traffic-zero-confirmed';
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const record = structuredClone(base.record);
    const at = iso(ports.clock);
    const open = record.stop && record.stop.state !== 'released' ? record.stop : null;
    if (open) {
      if (!mine(stopper, open.token)) throw ownerOf(record);
      record.stop = { ...open, token: stopper.token, state: later(open.state, reached), updatedAt: at };
    } else {
      if (FINAL_PHASES.includes(record.phase)) throw ownerOf(record);
      record.stop = freshStop(record, stopper, request, reached, at);
      beginStop(record, request, at, traffic !== null, false);
    }
    if (traffic !== null) {
      record.weight = 0;
      record.stop.traffic = bounded(traffic);
    }
    record.updatedAt = at;
    try {
      return { record, version: await ports.store.save(record, base.version) };
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      const cur = err.current;
      if (!cur) throw new StopLostError('nobody (the record was deleted)');
      const ours = own.current();
      if (cur.version === ours.version) base = ours;
      else if (cur.record.stop && cur.record.stop.state !== 'released' && mine(stopper, cur.record.stop.token)) base = cur;
      else if (isControlWrite(ours.record, cur.record)) {
        // Only an operator's `canary promote|pause|resume` came between: kept (never acted on), not a takeover.
        const merged = structuredClone(ours.record);
        mergeControls(merged, cur.record);
        base = { record: merged, version: cur.version };
      } else throw ownerOf(cur.record);
    }
  }
  throw new CanaryError('unexpected', 'the rollout record kept changing while the stop was being recorded');
}
