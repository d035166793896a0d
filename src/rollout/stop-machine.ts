import { CanaryError, EXIT, messageOf } from '../errors.js';
import { describeTraffic, foreignTraffic, rollbackHint, stopTraffic, undoHint, type TrafficStop } from './abort.js';
import { StateConflictError, StopRequestedError, type CallBudget, type StableStatus, type StoredRecord } from './ports.js';
import type { RolloutRecord, StopProgress, StopState } from './record.js';
import { claim, claimOwn } from './stop-claim.js';
import { bounded, exitFor, iso, StopLostError, type OwnRecord, type StopMachinePorts, type Stopper, type StopReport, type StopRequest } from './stop-types.js';

export { STOP_STATES, type StopProgress, type StopState } from './record.js';
export { StopLostError, type OwnRecord, type StopMachinePorts, type Stopper, type StopReport, type StopRequest } from './stop-types.js';

// The stop machine: every way a rollout ends early walks the same states, in this order, and the
// state it has reached is persisted in the rollout record (`record.stop`), so whoever holds the
// fence next — the deploy, a second signal, `canary rollback` from another machine, a
// `--resume` — takes the stop on from the state it finds:
//
//   requested → traffic-zero-confirmed → stable-restored → canary-scaled-down → recorded → released
//
// Each transition is one fenced write of the record (its resourceVersion, and the token of the
// stopper that drives it): a stopper whose token was replaced (a takeover) loses at its next
// write and does nothing more. The first transition is abort.ts's 0%-write/read-back loop;
// nothing after it happens until a read showed 0%. The engine, `canary rollback` and a second
// signal only request a stop here and report what it returns.
//
// Past a promotion's point of no return the stop runs `direction: 'forward'`: the same states,
// but stable is verified on the new image instead of set back, and the record says promoted.

/** True while a record holds a stop that is not yet released: `status` and `--resume` act on it. */
export function unfinishedStop(record: RolloutRecord | null | undefined): StopProgress | null {
  return record?.stop && record.stop.state !== 'released' ? record.stop : null;
}

const markerOf = (stop: Pick<StopProgress, 'result' | 'requestedBy' | 'requestedAt' | 'reason'>, token: string) =>
  `${stop.result} by ${stop.requestedBy} at ${stop.requestedAt} (stop driven by ${token}): ${stop.reason}`;

const trafficOptions = (ports: StopMachinePorts, stopper: Stopper, marker: string) => ({
  router: ports.router,
  clock: ports.clock,
  marker,
  deadlineMs: stopper.deadlineMs,
  callTimeoutMs: stopper.callTimeoutMs,
  ...(stopper.say && { onRetry: stopper.say }),
  ...(stopper.mayAct && { mayAct: stopper.mayAct }),
});

const notConfirmedExit = (t: TrafficStop) => (t.permanent && t.error instanceof CanaryError ? t.error.exitCode : EXIT.unreachable);

/**
 * A stop asked for: the record gets (or keeps) its `stop`, now driven by this stopper, and the
 * machine runs from the state found to `released`. A stop already under way is taken on where it
 * stands (its reason and result are kept); a rollout already over is left as it is.
 *
 * With `own` (the deploy's own stop, a second signal) traffic goes first: the 0% write and its
 * read-back happen before the record is written, from the requester's own record.
 */
export async function requestStop(ports: StopMachinePorts, stopper: Stopper, request: StopRequest, own?: OwnRecord): Promise<StopReport> {
  if (!own) {
    const claimed = await claim(ports, stopper, request);
    if (!claimed) return { state: 'released', confirmed: false, traffic: 'no rollout record: nothing to stop', record: null, exitCode: EXIT.unexpected };
    return drive(ports, stopper, claimed);
  }
  const say = (line: string) => stopper.say?.(line);
  const t = await stopTraffic(trafficOptions(ports, stopper, markerOf({ ...request, requestedAt: iso(ports.clock) }, stopper.token)));
  const traffic = t.confirmed ? describeTraffic(t, stopper.ctx) : describeTraffic(t, stopper.ctx, own.lastSet);
  if (!t.confirmed) say(traffic);
  let held: StoredRecord;
  try {
    held = await claimOwn(ports, stopper, request, own, t.confirmed ? traffic : null);
  } catch (err) {
    const lost = err instanceof StopLostError ? err : null;
    if (!lost) say(`could not save the rollout record: ${messageOf(err)}`);
    const base = { state: 'requested' as StopState, confirmed: t.confirmed, traffic, record: own.current().record };
    if (lost) return { ...base, exitCode: EXIT.aborted, lostTo: lost.holder, ...(lost.operatorAbort && { operatorAbort: lost.operatorAbort }) };
    // 0% is confirmed but no write of the record lands: the rest waits for `canary rollback` or `--resume`.
    return { ...base, exitCode: t.confirmed ? EXIT.unreachable : notConfirmedExit(t) };
  }
  if (!t.confirmed) return { state: 'requested', confirmed: false, traffic, record: held.record, ...(held.version !== null && { version: held.version }), exitCode: notConfirmedExit(t) };
  await ports.onState?.('traffic-zero-confirmed', held.record);
  return drive(ports, stopper, held);
}

/** `--resume`, `canary rollback` on a record that holds an unfinished stop: take it on as found. */
export async function resumeStop(ports: StopMachinePorts, stopper: Stopper): Promise<StopReport | null> {
  const found = await ports.store.load();
  const stop = unfinishedStop(found?.record);
  if (!found || !stop) return null;
  return requestStop(ports, stopper, stopper.asOperator ? { ...stopper.asOperator, result: 'aborted' } : stop);
}

/**
 * One fenced write: the record as `change` leaves it, saved only over the version this stopper
 * last wrote or read, and only while the stop is still this stopper's. A conflict re-reads: a
 * record that names another stopper ends this one (StopLostError).
 */
async function write(ports: StopMachinePorts, stopper: Stopper, held: StoredRecord, change: (r: RolloutRecord, s: StopProgress) => void): Promise<StoredRecord> {
  let base = held;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const holder = base.record.stop?.token;
    if (holder !== stopper.token || !base.record.stop) throw new StopLostError(holder ?? 'nobody (the stop is gone from the record)');
    const record = structuredClone(base.record);
    change(record, record.stop!);
    record.updatedAt = iso(ports.clock);
    if (record.stop) record.stop.updatedAt = record.updatedAt;
    let version: string;
    try {
      version = await ports.store.save(record, base.version);
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      if (!err.current) throw new StopLostError('nobody (the record was deleted)');
      base = err.current;
      continue;
    }
    if (record.stop) await ports.onState?.(record.stop.state, record);
    return { record, version };
  }
  throw new CanaryError('unexpected', 'the rollout record kept changing during the stop');
}

async function fenceRead(ports: StopMachinePorts, stopper: Stopper, held: StoredRecord): Promise<StoredRecord> {
  const taken = stopper.takenBy?.();
  if (taken) throw new StopLostError(taken);
  const now = await ports.store.load();
  if (!now) throw new StopLostError('nobody (the record was deleted)');
  const holder = now.record.stop?.token;
  if (holder !== stopper.token) throw new StopLostError(holder ?? 'nobody (the stop is gone from the record)');
  return now.version === held.version ? held : now;
}

async function drive(ports: StopMachinePorts, stopper: Stopper, start: StoredRecord): Promise<StopReport> {
  let held = start;
  const reached = (s: StopProgress | undefined) => s !== undefined && s.state !== 'requested';
  let confirmed = reached(held.record.stop);
  let traffic = held.record.stop?.traffic ?? held.record.outcome?.traffic ?? 'unknown';
  let restoreConflicts = 0;
  const budget = (): CallBudget => ({ timeoutMs: stopper.callTimeoutMs });
  const say = (line: string) => stopper.say?.(line);
  const report = (exitCode: number, extra: Partial<StopReport> = {}): StopReport => ({
    state: held.record.stop?.state ?? 'released',
    confirmed,
    traffic,
    record: held.record,
    ...(held.version !== null && { version: held.version }),
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
      const forward = stop.direction === 'forward';
      switch (stop.state) {
        case 'requested': {
          const t = await stopTraffic(trafficOptions(ports, stopper, markerOf(stop, stopper.token)));
          // `canary rollback` wrote 0% once before it read the record: a route found raised since
          // was raised by someone (a deploy's raise already past its fence, a hand edit).
          if (stopper.asOperator) {
            for (const r of t.before ?? []) if ((r.weight ?? 0) > 0 || r.overrides.length > 0) say(`canary Ingress ${r.name} was raised to ${r.weight ?? '?'}% after our first write: set to 0% again`);
          }
          if (!t.confirmed) {
            // Nothing after this state happens while a read does not show 0%.
            traffic = describeTraffic(t, stopper.ctx, `canary last set to ${held.record.weight}%`);
            say(traffic);
            return report(notConfirmedExit(t));
          }
          confirmed = true;
          traffic = describeTraffic(t, stopper.ctx);
          held = await write(ports, stopper, held, (r, s) => {
            s.state = 'traffic-zero-confirmed';
            s.traffic = bounded(traffic);
            r.weight = 0;
          });
          break;
        }
        case 'traffic-zero-confirmed': {
          const found = forward ? await verifyForward(ports, stopper) : await restoreStable(ports, stopper, stop, markerOf(stop, stopper.token));
          if (found === 'stable-changed') {
            // Stable was written between this stopper's read and its write: read it again, as the holder still.
            if ((restoreConflicts += 1) >= 3) throw new CanaryError('unexpected', 'stable kept changing while the stop was setting it back');
            break;
          }
          if (found.restore) say(found.restore.message);
          say(forward ? found.words : stableLine(found.stable));
          held = await write(ports, stopper, held, (r, s) => {
            s.state = 'stable-restored';
            s.stable = bounded(found.words);
            if (forward) return;
            r.rollback = {
              ...(r.rollback ?? { reason: s.reason, requestedBy: s.requestedBy, at: s.requestedAt }),
              // A verification that never happened (dry-run, backtest) is not reported as one.
              ...(found.stable.verified === false ? {} : { stableVerified: found.stable.available }),
              stableMessage: bounded(found.stable.message),
              ...(found.restore && { stableRestore: found.restore }),
            };
          });
          break;
        }
        case 'stable-restored': {
          // Read again before the canary loses its pods: a route raised since (or unreadable)
          // sends the machine back to its first transition.
          const after = await ports.router.inspect(budget()).catch(() => null);
          if (!after || after.ours.some((r) => (r.weight ?? 0) > 0 || r.overrides.length > 0)) {
            held = await write(ports, stopper, held, (_r, s) => void (s.state = 'requested'));
            break;
          }
          confirmed = true;
          let problem: string | undefined;
          if (foreignTraffic(after).length > 0) say('the canary Deployment keeps its pods: a route that is not ours still sends it traffic');
          else {
            const canary = stopper.canaryDeployment ?? `${stopper.ctx.target}-canary`;
            const scaled = await ports.workloads.scaleDownCanary(budget()).then(
              (r) => (r === 'not-found' ? `Deployment ${canary} not found: no canary pods to scale down` : r === 'already-zero' ? `Deployment ${canary} already at 0 replicas` : `Deployment ${canary} scaled to 0`),
              (err: unknown) => (problem = `the canary could not be scaled down: ${messageOf(err)}`),
            );
            say(scaled);
          }
          held = await write(ports, stopper, held, (_r, s) => {
            s.state = 'canary-scaled-down';
            if (problem) s.canary = bounded(problem);
          });
          break;
        }
        case 'canary-scaled-down':
          held = await write(ports, stopper, held, (r, s) => record(r, s, traffic));
          break;
        case 'recorded': {
          const released = await ports.release(budget()).catch((err: unknown) => `the Lease could not be released (it expires on its own): ${messageOf(err)}`);
          say(released);
          held = await write(ports, stopper, held, (_r, s) => void (s.state = 'released'));
          break;
        }
        case 'released':
          traffic = held.record.outcome?.traffic ?? traffic;
          confirmed ||= held.record.weight === 0;
          return report(held.record.outcome?.exitCode ?? exitFor(stop));
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

/** The `recorded` transition: the record's phase and outcome, as the stop's direction says. */
function record(r: RolloutRecord, s: StopProgress, traffic: string): void {
  s.state = 'recorded';
  r.weight = 0;
  const left = s.canary ? `; left: ${s.canary}` : '';
  if (s.direction === 'forward') {
    r.phase = 'promoted';
    r.images.stable = r.images.canary;
    delete r.promotion;
    const code = s.canary ? EXIT.unexpected : exitFor(s);
    r.outcome = { result: 'promoted', reason: `${s.reason}${left}`, at: r.updatedAt, exitCode: code, traffic: 'all traffic on stable, which now runs the new image' };
    return;
  }
  const restore = r.rollback?.stableRestore;
  if (s.result === 'rolled-back-after-promotion') return recordAfterPromotion(r, s, restore);
  const unrestored = restore && !restore.done ? `; ${restore.message}` : '';
  r.phase = s.result === 'promoted' ? 'promoted' : s.result;
  r.outcome = { result: s.result, reason: `${s.reason}${unrestored}`, at: r.updatedAt, exitCode: exitFor(s), traffic: s.traffic ?? traffic };
}

/**
 * A rollback after promotion: stable back on the image it ran before the rollout is the outcome
 * (exit 7 for the watch's, 4 for an operator's); stable not set back is a failure (exit 1) that
 * says what stable runs, never a rollback.
 */
function recordAfterPromotion(r: RolloutRecord, s: StopProgress, restore: NonNullable<RolloutRecord['rollback']>['stableRestore']): void {
  const promoted = r.watch?.image ?? r.images.canary;
  if (restore?.done) {
    r.phase = 'rolled-back-after-promotion';
    if (restore.image !== null) r.images.stable = restore.image;
    r.outcome = { result: s.result, reason: s.reason, at: r.updatedAt, exitCode: exitFor(s), traffic: `all traffic on stable, which runs ${restore.image ?? 'the previous image'} again` };
    return;
  }
  r.phase = 'failed';
  r.outcome = {
    result: 'failed',
    reason: `${s.reason}; stable was not set back: ${restore?.message ?? 'no write of stable was recorded'}`,
    at: r.updatedAt,
    exitCode: EXIT.unexpected,
    traffic: `all traffic on stable, which still runs ${promoted}`,
  };
}

/** What verifying stable found, as the line an operator reads. */
function stableLine(stable: StableStatus): string {
  if (stable.available) return `stable verified: ${stable.message}`;
  if (stable.message.startsWith('stable could not')) return `STABLE COULD NOT BE VERIFIED: ${stable.message.replace(/^stable could not be verified: /, '')}`;
  return `STABLE IS NOT AVAILABLE: ${stable.message}`;
}

interface StableFound {
  words: string;
  stable: StableStatus;
  restore?: { image: string | null; done: boolean; message: string };
}

/**
 * Stable during a promotion: set back to the recorded image (always written, so a promotion write
 * read before it loses with a 409), then verified. Outside a promotion: only verified.
 */
async function restoreStable(ports: StopMachinePorts, stopper: Stopper, stop: StopProgress, mark: string): Promise<StableFound | 'stable-changed'> {
  const verify = () =>
    ports.workloads.verifyStable({ timeoutMs: stopper.callTimeoutMs }).catch((err: unknown): StableStatus => ({ available: false, message: `stable could not be verified: ${messageOf(err)}` }));
  if (stop.restoreImage === null && stop.result === 'rolled-back-after-promotion') {
    // A dry-run or a backtest has no cluster to read the previous image from (nor to write it to).
    const stable = await verify();
    if (stable.verified === false) {
      const message = 'dry-run: would set the stable Deployment back to the image it ran before the rollout (a dry-run does not know it), and wait until fully available';
      return { words: message, stable, restore: { image: null, done: true, message } };
    }
  }
  if (stop.restoreImage === null) {
    const runs = await ports.workloads.stableImage().catch(() => null);
    const deployment = stopper.stableDeployment ?? stopper.ctx.target;
    const message = `the record does not say which image stable ran before the promotion; stable runs ${runs ?? 'an image that could not be read'}; undo the promotion with \`${undoHint(stopper.ctx, deployment)}\``;
    return { words: message, stable: await verify(), restore: { image: null, done: false, message } };
  }
  if (stop.restoreImage === undefined) {
    const stable = await verify();
    return { words: stable.message, stable };
  }
  const deployment = stopper.stableDeployment ?? stopper.ctx.target;
  // Conditional on stable's resourceVersion, read after the fence (this stopper still holds the
  // stop): a write delayed past a takeover loses instead of clobbering the new holder's.
  const fence = async () => {
    const now = await ports.store.load();
    const holder = now?.record.stop?.token;
    if (holder !== stopper.token) throw new StopLostError(holder ?? 'nobody (the stop is gone from the record)');
  };
  try {
    await ports.workloads.promoteStable(stop.restoreImage, { mark, fence });
  } catch (err) {
    if (err instanceof StopLostError) throw err;
    if (err instanceof StopRequestedError) return 'stable-changed';
    const runs = await ports.workloads.stableImage().catch(() => null);
    const message = `stable Deployment ${deployment} could not be set back to ${stop.restoreImage}: ${messageOf(err)}; it runs ${runs ?? 'an image that could not be read'}; finish with \`${rollbackHint(stopper.ctx)}\` (or \`${undoHint(stopper.ctx, deployment)}\`)`;
    return { words: message, stable: await verify(), restore: { image: stop.restoreImage, done: false, message } };
  }
  const stable = await verify();
  const message = stable.available
    ? `stable Deployment ${deployment} set back to ${stop.restoreImage} and available`
    : `stable Deployment ${deployment} set back to ${stop.restoreImage}, but it is not available: ${stable.message}`;
  return { words: message, stable, restore: { image: stop.restoreImage, done: stable.available, message } };
}

/** Past the point of no return: stable is only looked at (it runs the new image), never set back. */
async function verifyForward(ports: StopMachinePorts, stopper: Stopper): Promise<StableFound> {
  const stable = await ports.workloads
    .verifyStable({ timeoutMs: stopper.callTimeoutMs })
    .catch((err: unknown): StableStatus => ({ available: false, message: `stable could not be verified: ${messageOf(err)}` }));
  return { words: `finishing the promotion forward (stable is not set back): ${stable.message}`, stable };
}
