import { EXIT, messageOf } from '../errors.js';
import type { TargetNames } from '../policy/policy.js';
import { rollbackHint, undoHint, type CommandContext } from './abort.js';
import {
  StateConflictError,
  StopRequestedError,
  type Clock,
  type IncidentResult,
  type LeaseSeen,
  type StableStatus,
  type StoredRecord,
  type Workloads,
} from './ports.js';
import type { OutcomeResult, RolloutRecord } from './record.js';
import type { OperatorRollbackPorts } from './operator-rollback-types.js';

// Setting stable back to the image it ran before the rollout, after a promotion: by the
// post-promotion watch on a breach, or by `canary rollback` during the watch. Every write to
// stable is conditional: it carries the resourceVersion read after the record was checked to be
// still this stopper's, so a write delayed past someone else's loses instead of clobbering.

export interface StableRestore {
  image: string | null;
  done: boolean;
  message: string;
  /** Set when the write lost to someone else's (the record or stable changed since it was read). */
  lost?: string;
}

/** The phases a record of a watched promotion is in while its rollback may still be asked for or finished. */
export function watchedPromotion(record: RolloutRecord): boolean {
  return record.watch !== undefined && (record.phase === 'watching' || record.phase === 'rolling-back' || record.phase === 'rolled-back-after-promotion');
}

/**
 * Stable back to `image` and fully available. `fence` throws StopRequestedError when the record
 * is no longer the caller's; it runs after stable is read, and the write carries that read's
 * resourceVersion. A write that loses because stable was already set back by the other stopper
 * counts as done once stable runs the image; any other loss is reported, never retried.
 */
export async function restorePreviousImage(opts: {
  workloads: Workloads;
  image: string | null;
  names: TargetNames;
  ctx: CommandContext;
  marker: string;
  fence: () => Promise<void>;
}): Promise<StableRestore> {
  const { workloads, image, names, ctx } = opts;
  const deployment = names.stableDeployment;
  const running = async () => workloads.stableImage().catch(() => null);
  if (image === null) {
    return {
      image,
      done: false,
      message: `the record does not say which image stable ran before the rollout (a dry-run cannot read it), so stable was not set back; it runs ${(await running()) ?? 'an image that could not be read'}; undo the promotion with \`${undoHint(ctx, deployment)}\``,
    };
  }
  try {
    await workloads.promoteStable(image, { fence: opts.fence, mark: opts.marker });
    return { image, done: true, message: `stable Deployment ${deployment} set back to ${image} and available` };
  } catch (err) {
    if (err instanceof StopRequestedError) {
      const now = await running();
      if (now === image && !err.route.startsWith('rollout record')) {
        // The other stopper's write of the same image landed between our read and our write.
        try {
          await workloads.promoteStable(image);
          return { image, done: true, message: `stable Deployment ${deployment} set back to ${image} (by a concurrent stop) and available` };
        } catch (wait) {
          return { image, done: false, message: `stable Deployment ${deployment} runs ${image} again but is not available: ${messageOf(wait)}` };
        }
      }
      return { image, done: false, lost: err.by, message: `stable was not set back by this process: ${err.by}` };
    }
    const now = await running();
    return {
      image,
      done: false,
      message: `stable Deployment ${deployment} could not be set back to ${image}: ${messageOf(err)}; it runs ${now ?? 'an image that could not be read'}; finish with \`${rollbackHint(ctx)}\` (or \`${undoHint(ctx, deployment)}\`)`,
    };
  }
}

/** What `canary rollback` needs for this: its ports without the router (stable only, no route is touched). */
export type PostPromotionRollbackPorts = Omit<OperatorRollbackPorts, 'router'>;

export interface PostPromotionRollbackOptions {
  ctx: CommandContext;
  names: TargetNames;
  reason: string;
  requestedBy: string;
  clock: Clock;
  callTimeoutMs: number;
  incidents: boolean;
}

export interface PostPromotionReport {
  result: OutcomeResult;
  stable: StableStatus | null;
  alreadyRolledBack: boolean;
  incidentUrl: string | null;
  record: RolloutRecord | null;
  exitCode: number;
}

/**
 * `canary rollback` while the post-promotion watch runs (or finishing one it left): the record
 * first (the watching deploy's next save conflicts and it exits 4), then stable back to the
 * previous image and available, recorded, the Lease it saw, the Event, the incidents. Null when
 * the record is no longer a watched promotion (the caller reads it again and goes its own way).
 */
export async function postPromotionRollback(
  ports: PostPromotionRollbackPorts,
  opts: PostPromotionRollbackOptions,
  found: StoredRecord,
  run: { traffic: string; leaseSeen: LeaseSeen | null | undefined; say: (line: string) => void },
): Promise<PostPromotionReport | null> {
  const { say, traffic } = run;
  const at = new Date(opts.clock.now()).toISOString();
  let stored = found;
  let record: RolloutRecord | null = null;
  let version = '';
  for (let attempt = 0; attempt < 5 && record === null; attempt += 1) {
    const r = stored.record;
    if (!watchedPromotion(r)) return null;
    if (r.phase === 'rolled-back-after-promotion') {
      say(`rollout ${r.id} was already rolled back after promotion (${r.outcome?.reason ?? 'no reason recorded'}); stable runs ${r.images.stable ?? 'the previous image'}`);
      return { result: 'rolled-back-after-promotion', stable: null, alreadyRolledBack: true, incidentUrl: null, record: r, exitCode: EXIT.ok };
    }
    const next = structuredClone(r);
    const watch = next.watch!;
    next.phase = 'rolling-back';
    next.rollback ??= { reason: `rolled back after promotion by ${opts.requestedBy}: ${opts.reason}`, requestedBy: opts.requestedBy, at };
    next.rollback.stableRestore ??= { image: watch.previousImage, done: false, message: 'pending' };
    watch.result ??= 'rolled-back-by-operator';
    watch.rolledBackBy ??= opts.requestedBy;
    next.updatedAt = at;
    try {
      version = await ports.saveRecord(next, stored.version);
      record = next;
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      if (!err.current) return null;
      stored = err.current;
    }
  }
  if (!record) return null;
  const image = record.rollback?.stableRestore?.image ?? record.watch?.previousImage ?? null;
  say(`record ${record.id}: promoted ${record.watch?.image ?? record.images.canary}, in its post-promotion watch; rolled back by ${opts.requestedBy}: ${opts.reason}; setting stable back to ${image ?? 'the previous image (unknown)'}`);

  const ours = version;
  const restore = await restorePreviousImage({
    workloads: ports.workloads,
    image,
    names: opts.names,
    ctx: opts.ctx,
    marker: `rolled back after promotion by ${opts.requestedBy} at ${at}`,
    fence: async () => {
      const now = await ports.loadRecord();
      if (now.kind !== 'found' || now.stored.version !== ours) {
        throw new StopRequestedError(`rollout record ${record!.id}`, 'the rollout record changed since this rollback wrote it (another stopper is setting stable back)');
      }
    },
  });
  say(restore.message);
  let stable: StableStatus | null = null;
  try {
    stable = await ports.workloads.verifyStable({ timeoutMs: opts.callTimeoutMs });
    say(stable.available ? `stable verified: ${stable.message}` : `STABLE IS NOT AVAILABLE: ${stable.message}`);
  } catch (err) {
    say(`STABLE COULD NOT BE VERIFIED: ${messageOf(err)}`);
  }

  const { lost, ...kept } = restore;
  const finished = structuredClone(record);
  finished.rollback = { ...finished.rollback!, stableRestore: kept, stableVerified: stable?.available ?? false, stableMessage: stable?.message ?? 'stable could not be verified' };
  if (restore.done) {
    finished.phase = 'rolled-back-after-promotion';
    finished.images.stable = image;
    finished.outcome = {
      result: 'rolled-back-after-promotion',
      reason: `rolled back after promotion by ${opts.requestedBy}: ${opts.reason}`,
      at: new Date(opts.clock.now()).toISOString(),
      // The watching deploy's exit: an operator stopped it.
      exitCode: EXIT.aborted,
      traffic: `${traffic}; stable runs ${image} again`,
    };
  }
  let saved: RolloutRecord | null = null;
  try {
    await ports.saveRecord(finished, version);
    saved = finished;
  } catch (err) {
    say(`could not record the rollback after promotion: ${messageOf(err)}; \`canary status\` may show it unfinished: run this command again`);
  }
  if (lost) say(`another stopper is setting stable back (${lost}): it finishes the job`);

  if (run.leaseSeen) {
    const cleared = await ports.lease.clear(run.leaseSeen, { timeoutMs: opts.callTimeoutMs }).catch((err: unknown) => ({ result: 'failed' as const, why: messageOf(err) }));
    if (cleared.result === 'deleted') say(`Lease ${opts.ctx.target}-canary of the stopped deploy deleted: the next deploy can start at once`);
    else if (cleared.result === 'kept') say(`Lease ${opts.ctx.target}-canary left alone: it is held by ${cleared.holder} (the watching deploy releases it as it exits)`);
    else if (cleared.result === 'failed') say(`could not delete the deploy's Lease (it expires on its own): ${cleared.why}`);
  }
  const problem = await ports.event('CanaryRolledBackAfterPromotion', `rolled back after promotion by ${opts.requestedBy}: ${opts.reason}; stable ${restore.done ? `runs ${image} again` : 'was NOT set back'}`);
  if (problem) say(problem);

  let incidentUrl: string | null = null;
  if (opts.incidents && restore.done && saved) {
    const results = await ports.openIncidents(saved).catch((err: unknown): IncidentResult[] => [{ sink: 'incidents', ok: false, message: messageOf(err) }]);
    for (const r of results) say(r.ok ? `incident opened in ${r.sink}${r.url ? `: ${r.url}` : ''}` : `incident sink ${r.sink} failed: ${r.message}`);
    incidentUrl = results.find((r) => r.ok && r.url)?.url ?? null;
  }
  const ok = restore.done && stable?.available === true;
  return {
    result: restore.done ? 'rolled-back-after-promotion' : 'failed',
    stable,
    alreadyRolledBack: false,
    incidentUrl,
    record: saved ?? finished,
    exitCode: ok ? EXIT.ok : EXIT.unexpected,
  };
}
