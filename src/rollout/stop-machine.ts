import { CanaryError, EXIT, messageOf } from '../errors.js';
import { describeTraffic, foreignTraffic, stopTraffic, type CommandContext } from './abort.js';
import { StateConflictError, type CallBudget, type Clock, type StateStore, type StoredRecord, type TrafficRouter, type Workloads } from './ports.js';
import { FINAL_PHASES, STOP_STATES, type RolloutRecord, type StopProgress, type StopState } from './record.js';

export { STOP_STATES, type StopProgress, type StopState } from './record.js';

// The stop machine: every way a rollout ends early walks the same states, in this order, and the
// state it has reached is persisted in the rollout record (`record.stop`), so whoever holds the
// fence next — the deploy, a second signal, `canary rollback` from another machine, a
// `--resume` — takes the stop on from the state it finds:
//
//   requested → traffic-zero-confirmed → stable-restored → canary-scaled-down → recorded → released
//
// Each transition is one fenced write of the record (its resourceVersion, and the token of the
// stopper that drives it): a stopper whose token was replaced (a takeover) loses at its next
// write and does nothing more. The first transition is abort.ts's proven 0%-write/read-back
// loop; nothing after it happens until a read showed 0%.

const MAX_TEXT = 500;
const bounded = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text);

/** A stop whose record now names another stopper: this one does nothing more. */
export class StopLostError extends Error {
  constructor(readonly holder: string) {
    super(`the stop was taken on by ${holder}: this stopper does nothing more`);
    this.name = 'StopLostError';
  }
}

export interface StopMachinePorts {
  router: TrafficRouter;
  workloads: Workloads;
  store: StateStore;
  clock: Clock;
  /** The last transition: the deploy gives its Lease back, `canary rollback` deletes the one it saw. */
  release(budget: CallBudget): Promise<string>;
}

export interface Stopper {
  /** Holder identity + epoch: what makes a stale stopper lose. */
  token: string;
  ctx: CommandContext;
  /** How long the first transition keeps trying (deploy: minutes; rollback: --timeout). */
  deadlineMs: number;
  callTimeoutMs: number;
  say?: (line: string) => void;
  /** Null while this stopper may write (a deploy: its Lease renewed within the renew deadline); else why not. */
  mayAct?: () => string | null;
  /** `canary rollback`: taking a stop on makes it the operator's (requester, reason, result 'aborted'). */
  asOperator?: { requestedBy: string; reason: string; /** The operator's own words, for record.rollback. */ why: string };
}

export interface StopRequest {
  requestedBy: string;
  reason: string;
  result: StopProgress['result'];
}

export interface StopReport {
  /** The state reached; `released` is the only end. */
  state: StopState;
  /** A read showed every route of ours at 0%. */
  confirmed: boolean;
  traffic: string;
  record: RolloutRecord | null;
  /** Set when a newer stopper took the stop over: nothing more was done by this one. */
  lostTo?: string;
  exitCode: number;
}

const iso = (clock: Clock) => new Date(clock.now()).toISOString();

/**
 * The record's stop moved to `state` by `token` (created on the first call with the request): how
 * a stopper that runs a transition itself (the deploy's halt, a second signal) records it in the
 * same words as the machine. The caller saves the record: that save is the transition's write.
 */
export function markStop(record: RolloutRecord, state: StopState, token: string, request: StopRequest & { restoreImage?: string | null }, at: string): void {
  const { restoreImage, ...asked } = request;
  const kept = record.stop && record.stop.state !== 'released' ? record.stop : null;
  record.stop = {
    ...(kept ?? {
      requestedBy: bounded(asked.requestedBy),
      reason: bounded(asked.reason),
      result: asked.result,
      requestedAt: at,
      ...(restoreImage !== undefined && { restoreImage }),
    }),
    state,
    token,
    updatedAt: at,
  };
}

/** True while a record holds a stop that is not yet released: `status` and `--resume` act on it. */
export function unfinishedStop(record: RolloutRecord | null | undefined): StopProgress | null {
  return record?.stop && record.stop.state !== 'released' ? record.stop : null;
}

/**
 * A stop asked for: the record gets (or keeps) its `stop`, now driven by this stopper, and the
 * machine runs from the state found to `released`. A stop already under way is taken on where it
 * stands (its reason and result are kept); a rollout already over is left as it is.
 */
export async function requestStop(ports: StopMachinePorts, stopper: Stopper, request: StopRequest): Promise<StopReport> {
  const claimed = await claim(ports, stopper, request);
  if (!claimed) return { state: 'released', confirmed: false, traffic: 'no rollout record: nothing to stop', record: null, exitCode: EXIT.unexpected };
  return drive(ports, stopper, claimed);
}

/** `--resume`, `canary rollback` on a record that holds an unfinished stop: take it on as found. */
export async function resumeStop(ports: StopMachinePorts, stopper: Stopper): Promise<StopReport | null> {
  const found = await ports.store.load();
  const stop = unfinishedStop(found?.record);
  if (!found || !stop) return null;
  return requestStop(ports, stopper, stopper.asOperator ? { ...stopper.asOperator, result: 'aborted' } : stop);
}

async function claim(ports: StopMachinePorts, stopper: Stopper, request: StopRequest): Promise<StoredRecord | null> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const found = await ports.store.load();
    if (!found) return null;
    const record = structuredClone(found.record);
    const at = iso(ports.clock);
    if (record.stop) {
      if (record.stop.token === stopper.token) return found;
      record.stop = { ...record.stop, token: stopper.token, updatedAt: at };
      // An operator who takes a stop on before it is recorded owns its story (who, why, result).
      if (stopper.asOperator && STOP_STATES.indexOf(record.stop.state) < STOP_STATES.indexOf('recorded')) {
        record.stop = { ...record.stop, requestedBy: bounded(request.requestedBy), reason: bounded(request.reason), result: request.result };
        record.rollback ??= { reason: bounded(stopper.asOperator.why), requestedBy: bounded(stopper.asOperator.requestedBy), at };
      }
    } else {
      if (FINAL_PHASES.includes(record.phase)) return found;
      const promoting = record.promotion !== undefined && record.promotion !== 'routing-to-canary';
      record.stop = {
        state: 'requested',
        requestedBy: bounded(request.requestedBy),
        reason: bounded(request.reason),
        result: request.result,
        token: stopper.token,
        requestedAt: at,
        updatedAt: at,
        ...(promoting && { restoreImage: record.images.stable }),
      };
      record.phase = 'rolling-back';
      record.rollback ??= { reason: bounded(request.reason), requestedBy: bounded(request.requestedBy), at };
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
 * One fenced write: the record as `change` leaves it, saved only over the version this stopper
 * last wrote or read, and only while the stop is still this stopper's. A conflict re-reads: a
 * record that names another stopper ends this one (StopLostError).
 */
async function write(ports: StopMachinePorts, stopper: Stopper, held: StoredRecord, change: (r: RolloutRecord) => void): Promise<StoredRecord> {
  let base = held;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const holder = base.record.stop?.token;
    if (holder !== stopper.token) throw new StopLostError(holder ?? 'nobody (the stop is gone from the record)');
    const record = structuredClone(base.record);
    change(record);
    record.updatedAt = iso(ports.clock);
    if (record.stop) record.stop.updatedAt = record.updatedAt;
    try {
      return { record, version: await ports.store.save(record, base.version) };
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      if (!err.current) throw new StopLostError('nobody (the record was deleted)');
      base = err.current;
    }
  }
  throw new CanaryError('unexpected', 'the rollout record kept changing during the stop');
}

async function fenceRead(ports: StopMachinePorts, stopper: Stopper, held: StoredRecord): Promise<StoredRecord> {
  const now = await ports.store.load();
  if (!now) throw new StopLostError('nobody (the record was deleted)');
  const holder = now.record.stop?.token;
  if (holder !== stopper.token) throw new StopLostError(holder ?? 'nobody (the stop is gone from the record)');
  return now.version === held.version ? held : now;
}

async function drive(ports: StopMachinePorts, stopper: Stopper, start: StoredRecord): Promise<StopReport> {
  let held = start;
  let confirmed = false;
  let traffic = held.record.stop?.traffic ?? held.record.outcome?.traffic ?? 'unknown';
  const budget = (): CallBudget => ({ timeoutMs: stopper.callTimeoutMs });
  const say = (line: string) => stopper.say?.(line);
  const report = (exitCode: number, extra: Partial<StopReport> = {}): StopReport => ({
    state: held.record.stop?.state ?? 'released',
    confirmed,
    traffic,
    record: held.record,
    exitCode,
    ...extra,
  });
  try {
    for (;;) {
      // The fence, read before acting: a stopper whose token was replaced acts no more (and
      // should a takeover land between this read and the action, the write after it loses).
      held = await fenceRead(ports, stopper, held);
      const stop = held.record.stop;
      if (!stop) return report(EXIT.ok);
      const marker = `${stop.result} by ${stop.requestedBy} at ${stop.requestedAt} (stop driven by ${stopper.token}): ${stop.reason}`;
      switch (stop.state) {
        case 'requested': {
          const t = await stopTraffic({ router: ports.router, clock: ports.clock, marker, deadlineMs: stopper.deadlineMs, callTimeoutMs: stopper.callTimeoutMs, onRetry: say, ...(stopper.mayAct && { mayAct: stopper.mayAct }) });
          if (!t.confirmed) {
            // Nothing after this state happens while a read does not show 0%.
            traffic = describeTraffic(t, stopper.ctx, `canary last set to ${held.record.weight}%`);
            say(traffic);
            return report(t.permanent && t.error instanceof CanaryError ? t.error.exitCode : EXIT.unreachable);
          }
          confirmed = true;
          traffic = describeTraffic(t, stopper.ctx);
          held = await write(ports, stopper, held, (r) => {
            r.stop!.state = 'traffic-zero-confirmed';
            r.stop!.traffic = bounded(traffic);
            r.weight = 0;
          });
          break;
        }
        case 'traffic-zero-confirmed': {
          const words = await restoreStable(ports, stopper, stop, marker);
          say(words);
          held = await write(ports, stopper, held, (r) => {
            r.stop!.state = 'stable-restored';
            r.stop!.stable = bounded(words);
          });
          break;
        }
        case 'stable-restored': {
          // Read again before the canary loses its pods: a route raised since (or unreadable)
          // sends the machine back to its first transition.
          const after = await ports.router.inspect(budget()).catch(() => null);
          if (!after || after.ours.some((r) => (r.weight ?? 0) > 0 || r.overrides.length > 0)) {
            held = await write(ports, stopper, held, (r) => void (r.stop!.state = 'requested'));
            break;
          }
          confirmed = true;
          if (foreignTraffic(after).length > 0) say('the canary Deployment keeps its pods: a route that is not ours still sends it traffic');
          else say(`canary Deployment: ${await ports.workloads.scaleDownCanary(budget())}`);
          held = await write(ports, stopper, held, (r) => void (r.stop!.state = 'canary-scaled-down'));
          break;
        }
        case 'canary-scaled-down':
          held = await write(ports, stopper, held, (r) => {
            const s = r.stop!;
            s.state = 'recorded';
            r.phase = s.result;
            r.weight = 0;
            r.outcome = { result: s.result, reason: s.reason, at: r.updatedAt, exitCode: exitFor(s.result), traffic: s.traffic ?? traffic };
          });
          break;
        case 'recorded': {
          const released = await ports.release(budget()).catch((err: unknown) => `the Lease could not be released (it expires on its own): ${messageOf(err)}`);
          say(released);
          held = await write(ports, stopper, held, (r) => void (r.stop!.state = 'released'));
          break;
        }
        case 'released':
          traffic = held.record.outcome?.traffic ?? traffic;
          confirmed ||= held.record.weight === 0;
          return report(held.record.outcome?.exitCode ?? exitFor(stop.result));
      }
    }
  } catch (err) {
    if (err instanceof StopLostError) {
      say(err.message);
      return report(EXIT.aborted, { lostTo: err.holder });
    }
    throw err;
  }
}

/**
 * Stable during a promotion: set back to the recorded image (always written, so a promotion write
 * read before it loses with a 409), then verified. Outside a promotion: only verified.
 */
async function restoreStable(ports: StopMachinePorts, stopper: Stopper, stop: StopProgress, mark: string): Promise<string> {
  if (stop.restoreImage === null) return 'the record does not say which image stable ran before the promotion; stable was left as it is';
  if (stop.restoreImage !== undefined) {
    try {
      await ports.workloads.promoteStable(stop.restoreImage, { mark });
    } catch (err) {
      return `stable could not be set back to ${stop.restoreImage}: ${messageOf(err)}`;
    }
  }
  const status = await ports.workloads
    .verifyStable({ timeoutMs: stopper.callTimeoutMs })
    .catch((err: unknown) => ({ available: false, message: `stable could not be verified: ${messageOf(err)}` }));
  return `${stop.restoreImage ? `stable set back to ${stop.restoreImage}; ` : ''}${status.message}`;
}

function exitFor(result: StopProgress['result']): number {
  if (result === 'rolled-back') return EXIT.rolledBack;
  if (result === 'aborted') return EXIT.aborted;
  return EXIT.unexpected;
}
