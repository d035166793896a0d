import { CanaryError, EXIT, messageOf } from '../errors.js';
import { undoHint } from './abort.js';
import type { OperatorRollbackOptions, OperatorRollbackPorts, RollbackReport } from './operator-rollback-types.js';
import type { IncidentResult, LeaseSeen, StableStatus } from './ports.js';
import { requestStop, resumeStop, type StopMachinePorts, type Stopper } from './stop-machine.js';

// `canary rollback` through the stop machine: a rollout still under way gets a stop requested by
// the operator, and a stop another stopper left unfinished is taken on where it stands. This
// module only asks the machine and tells the operator what it did.

export type TakenOn = Pick<RollbackReport, 'result' | 'traffic' | 'stable' | 'alreadyRolledBack' | 'incidentUrl' | 'record' | 'exitCode'>;

function machinePorts(ports: OperatorRollbackPorts, opts: OperatorRollbackOptions, leaseSeen: LeaseSeen | null | undefined): StopMachinePorts {
  const { ctx } = opts;
  return {
    router: ports.router,
    workloads: ports.workloads,
    clock: opts.clock,
    store: {
      load: async () => {
        const read = await ports.loadRecord();
        return read.kind === 'found' ? read.stored : null;
      },
      save: (record, expected) => ports.saveRecord(record, expected),
    },
    // Only the Lease this command saw when its stop began is deleted (never a newer holder's).
    release: async (budget) => {
      if (leaseSeen === undefined) throw new Error('it could not be read when the stop began');
      const cleared = await ports.lease.clear(leaseSeen, budget);
      if (cleared.result === 'kept') return `Lease ${ctx.target}-canary left alone: it is held by ${cleared.holder} and changed since this rollback read it (a live deploy releases it itself; a deploy started since keeps its own)`;
      return cleared.result === 'deleted' ? `Lease ${ctx.target}-canary of the stopped deploy deleted: the next deploy can start at once` : `no Lease of ${ctx.target} to release`;
    },
  };
}

function operatorStopper(opts: OperatorRollbackOptions, say: (line: string) => void): Stopper {
  return {
    token: `rollback by ${opts.requestedBy} at ${new Date(opts.clock.now()).toISOString()}`,
    ctx: opts.ctx,
    stableDeployment: opts.names.stableDeployment,
    canaryDeployment: opts.names.canaryDeployment,
    deadlineMs: opts.deadlineMs,
    callTimeoutMs: opts.callTimeoutMs,
    say,
    asOperator: { requestedBy: opts.requestedBy, reason: `rolled back by ${opts.requestedBy}: ${opts.reason}`, why: opts.reason },
  };
}

/**
 * `fresh`: the record holds no stop (a rollout still progressing or promoting): the operator's
 * stop is requested. Otherwise the unfinished stop is taken on; null when there was none.
 * `stableOnly`: no route that is not ours sends the canary traffic.
 */
export async function operatorStop(
  ports: OperatorRollbackPorts,
  opts: OperatorRollbackOptions,
  leaseSeen: LeaseSeen | null | undefined,
  say: (line: string) => void,
  fresh: boolean,
  stableOnly: boolean,
): Promise<TakenOn | null> {
  const { ctx } = opts;
  const stopper = operatorStopper(opts, say);
  const mports = machinePorts(ports, opts, leaseSeen);
  const report = fresh
    ? await requestStop(mports, stopper, { ...stopper.asOperator!, result: 'aborted' })
    : await resumeStop(mports, stopper);
  if (!report) return null;
  if (report.state === 'requested' && !report.confirmed && !report.lostTo) {
    throw new CanaryError('unreachable', `${report.traffic}; the stop is left in state requested until a read shows 0% (nothing else was done: the canary keeps its pods)`);
  }
  const record = report.record;
  const stop = record?.stop;
  const done = report.state === 'released' || report.lostTo !== undefined;
  if (stop?.direction === 'forward' && !report.lostTo) {
    // Past its point of no return the stop finishes the promotion: the rollback asked for cannot be.
    const image = (await ports.workloads.stableImage().catch(() => null)) ?? record?.images.canary ?? 'the new image';
    say(
      `rollout ${record?.id ?? ctx.target} was past its point of no return (stable runs ${image} and is available): its stop was finished forward (${stop.state}), the promotion recorded; canary rollback cannot undo a promotion: run ${undoHint(ctx, opts.names.stableDeployment)}`,
    );
    const problem = await ports.event('CanaryPromotionFinished', `stop finished forward by ${opts.requestedBy}; ${report.traffic}`);
    if (problem) say(problem);
    return { result: 'promoted', traffic: `${report.traffic} (which runs the promoted image)`, stable: null, alreadyRolledBack: false, incidentUrl: null, record, exitCode: done ? EXIT.unexpected : report.exitCode || EXIT.unexpected };
  }
  const ours = record !== null && stop?.requestedBy === opts.requestedBy && !report.lostTo;
  const afterPromotion = stop?.result === 'rolled-back-after-promotion';
  const what = afterPromotion ? 'rolled back after promotion' : 'aborted';
  if (report.lostTo) say(`another stopper (${report.lostTo}) took the stop on: it finishes it`);
  else if (record && ours && fresh) say(`record ${record.id}: ${what} by ${opts.requestedBy}: ${opts.reason}`);
  else if (record && ours) say(`record ${record.id}: ${what} by ${opts.requestedBy}: ${opts.reason} (the unfinished stop taken on and finished: ${stop?.state})`);
  else if (record && stop) say(`record ${record.id}: already ${record.outcome?.result ?? stop.result} (${stop.reason}); the unfinished stop taken on and finished: ${stop.state}`);
  const problem = await ports.event(afterPromotion ? 'CanaryRolledBackAfterPromotion' : 'CanaryRolledBack', `${fresh ? `${afterPromotion ? 'rolled back after promotion' : 'rolled back'} by ${opts.requestedBy}` : `stop finished by ${opts.requestedBy}`}: ${opts.reason}; ${report.traffic}`);
  if (problem) say(problem);

  // Incidents last, after traffic is safe; only for a rollback this command recorded.
  let incidentUrl: string | null = null;
  if (ours && record && opts.incidents && report.state === 'released') {
    const results = await ports.openIncidents(record).catch((err: unknown): IncidentResult[] => [{ sink: 'incidents', ok: false, message: messageOf(err) }]);
    for (const r of results) say(r.ok ? `incident opened in ${r.sink}${r.url ? `: ${r.url}` : ''}` : r.sink === 'incidents' ? `incident not opened: ${r.message}` : `incident sink ${r.sink} failed: ${r.message}`);
    incidentUrl = results.find((r) => r.ok && r.url)?.url ?? null;
  }
  // Traffic is safe; what can still be wrong is stable (not available, or not set back) or a
  // route that is not ours. Each is exit 1 with the line that says so above.
  const rb = record?.rollback;
  const stable: StableStatus | null = rb?.stableVerified !== undefined ? { available: rb.stableVerified, message: rb.stableMessage ?? '' } : null;
  const stableWrong = rb?.stableVerified === false || (rb?.stableRestore !== undefined && !rb.stableRestore.done);
  return {
    result: record?.outcome?.result ?? 'aborted',
    traffic: report.traffic,
    stable,
    alreadyRolledBack: false,
    incidentUrl,
    record,
    exitCode: done && !stableWrong && stableOnly ? EXIT.ok : EXIT.unexpected,
  };
}
