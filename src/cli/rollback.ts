import { CanaryError, EXIT, invalidInput, messageOf } from '../errors.js';
import { ConfigMapStateStore, CorruptRecordError } from '../k8s/configmap-state-store.js';
import { connect } from '../k8s/connection.js';
import { DeploymentWorkloads } from '../k8s/deployment-workloads.js';
import { findOwnedCanaryIngress, setOwnedCanaryWeight } from '../k8s/ingress-router.js';
import { recordEvent } from '../k8s/kube-events.js';
import { targetNames, type Policy } from '../policy/policy.js';
import { systemClock } from '../rollout/clock.js';
import { rolloutIdFor } from '../rollout/engine.js';
import { StateConflictError, type StableStatus, type StoredRecord } from '../rollout/ports.js';
import { RECORD_SCHEMA_VERSION, type RolloutRecord } from '../rollout/record.js';
import { makeIncidentSinks, parseNamespace, parseOutput, parseTargetName, startedBy } from './common.js';
import { loadPolicy } from '../policy/loader.js';
import type { IncidentSink } from '../rollout/ports.js';

export interface RollbackFlags {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  reason?: string;
  output?: string;
  policy: Policy;
  requestedBy: string;
  incidents: IncidentSink[];
}

export interface RollbackReport {
  target: string;
  namespace: string;
  actions: string[];
  traffic: string;
  stable: StableStatus | null;
  alreadyRolledBack: boolean;
  record: RolloutRecord | null;
}

/** A record for a target whose own record was missing or unreadable, so `status` can still tell the truth. */
function replacementRecord(target: string, namespace: string, policy: Policy, why: string, now: number): RolloutRecord {
  const at = new Date(now).toISOString();
  return {
    schemaVersion: RECORD_SCHEMA_VERSION,
    id: rolloutIdFor(target, now),
    target,
    namespace,
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

/**
 * `canary rollback NAME --reason TEXT`: the canary goes to 0% first, with one PATCH, whatever
 * state the record is in; then the abort is recorded (a running deploy sees it at its next write
 * and stops with exit 4), the canary is scaled down and stable is verified. Running it twice is safe.
 */
export async function rollbackCommand(name: string, flags: RollbackFlags): Promise<{ code: number; report: RollbackReport }> {
  const target = parseTargetName(name);
  const format = parseOutput(flags.output);
  const reason = flags.reason?.trim();
  if (!reason) throw invalidInput('--reason: expected a few words saying why, e.g. --reason "checkout 500s after deploy"; it goes into the record and the incident');
  const conn = connect({ ...(flags.kubeconfig && { kubeconfig: flags.kubeconfig }), ...(flags.context && { context: flags.context }) });
  const namespace = parseNamespace(flags.namespace ?? conn.defaultNamespace);
  const names = targetNames(target, flags.policy.target);
  const retry = { attempts: flags.policy.kubernetes.attempts, timeoutMs: flags.policy.kubernetes.timeoutMs };
  const actions: string[] = [];
  const say = (line: string) => {
    actions.push(line);
    if (format === 'text') process.stdout.write(`${line}\n`);
  };

  // 1. Traffic, before anything else.
  const ingress = await findOwnedCanaryIngress(conn.kc, namespace, target, retry);
  let traffic: string;
  if (!ingress) {
    traffic = `no canary Ingress of ours exists for ${target}: all traffic is on stable`;
    say(traffic);
  } else if (ingress.weight === 0) {
    traffic = `canary Ingress ${ingress.name} already at 0%: all traffic is on stable`;
    say(traffic);
  } else {
    await setOwnedCanaryWeight(conn.kc, namespace, ingress.name, 0, retry);
    traffic = `canary Ingress ${ingress.name}: weight ${ingress.weight ?? '?'}% → 0%, all traffic on stable`;
    say(traffic);
  }

  // 2. The record: mark the abort so a running deploy stops, and status tells the story.
  const store = new ConfigMapStateStore({ kc: conn.kc, namespace, target, retry });
  const now = systemClock.now();
  const at = new Date(now).toISOString();
  let record: RolloutRecord | null = null;
  let alreadyRolledBack = false;
  for (let attempt = 0; attempt < 5 && record === null; attempt += 1) {
    let stored: StoredRecord | null;
    let replacing: { why: string; version: string | null } | null = null;
    try {
      stored = await store.load();
      if (!stored) replacing = { why: 'no rollout record existed', version: null };
    } catch (err) {
      if (!(err instanceof CorruptRecordError)) throw err;
      stored = null;
      replacing = { why: `the previous record was corrupt: ${err.message}`, version: err.version };
    }
    const next = stored ? structuredClone(stored.record) : replacementRecord(target, namespace, flags.policy, replacing?.why ?? '', now);
    if (stored && (next.phase === 'rolled-back' || next.phase === 'aborted') && next.weight === 0) {
      alreadyRolledBack = true;
    }
    next.rollback = next.rollback ?? { reason, requestedBy: flags.requestedBy, at };
    if (!alreadyRolledBack || !next.outcome) {
      next.phase = next.phase === 'promoted' ? 'promoted' : 'aborted';
      next.weight = 0;
      next.updatedAt = at;
      if (next.phase === 'aborted') {
        next.outcome = { result: 'aborted', reason: `rolled back by ${flags.requestedBy}: ${reason}`, at, exitCode: EXIT.aborted, traffic };
      }
    }
    try {
      await store.save(next, stored?.version ?? replacing?.version ?? null);
      record = next;
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      // A running deploy wrote in between: read again and mark its newer record.
    }
  }
  if (!record) throw new CanaryError('unexpected', 'the rollout record kept changing while recording the rollback; traffic is on stable; run the command again');
  say(alreadyRolledBack ? `record ${record.id}: already rolled back (${record.outcome?.reason ?? 'no reason recorded'})` : `record ${record.id}: aborted by ${flags.requestedBy}: ${reason}`);

  // 3. Scale the canary down and verify stable.
  const workloads = new DeploymentWorkloads({ kc: conn.kc, namespace, names, clock: systemClock, retry, pollMs: flags.policy.kubernetes.pollIntervalMs });
  try {
    await workloads.scaleDownCanary();
    say(`Deployment ${names.canaryDeployment} scaled to 0`);
  } catch (err) {
    say(`could not scale ${names.canaryDeployment} down: ${messageOf(err)}`);
  }
  let stable: StableStatus | null = null;
  try {
    stable = await workloads.verifyStable();
    say(stable.available ? `stable verified: ${stable.message}` : `STABLE IS NOT AVAILABLE: ${stable.message}`);
  } catch (err) {
    say(`could not verify stable: ${messageOf(err)}`);
  }
  await recordEvent(conn.kc, namespace, names.stableDeployment, {
    reason: 'CanaryRolledBack',
    message: `rolled back by ${flags.requestedBy}: ${reason}; ${traffic}`,
    type: 'Warning',
  });

  // Incidents last, after traffic is safe; only for the rollback this command made.
  if (!alreadyRolledBack) {
    if (stable && record.rollback) {
      record.rollback.stableVerified = stable.available;
      record.rollback.stableMessage = stable.message;
    }
    const final = record;
    const results = await Promise.all(flags.incidents.map((sink) => sink.open(final)));
    for (const r of results) say(r.ok ? `incident opened in ${r.sink}${r.url ? `: ${r.url}` : ''}` : `incident sink ${r.sink} failed: ${r.message}`);
  }

  const report: RollbackReport = { target, namespace, actions, traffic, stable, alreadyRolledBack, record };
  if (format === 'json') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  // Traffic is safe either way; a stable that is not available is the one thing still wrong.
  return { code: stable?.available === false ? EXIT.unexpected : EXIT.ok, report };
}

export interface RollbackCliFlags {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  reason?: string;
  output?: string;
  policy?: string;
  incident?: boolean;
}

/** The commander entry point: loads the policy and its incident sinks, then rolls back. */
export async function rollbackFromFlags(name: string, flags: RollbackCliFlags): Promise<number> {
  const policy = loadPolicy(flags.policy);
  const incidents = makeIncidentSinks(policy, { enabled: flags.incident !== false, dryRun: false });
  const { code } = await rollbackCommand(name, {
    ...(flags.namespace !== undefined && { namespace: flags.namespace }),
    ...(flags.kubeconfig !== undefined && { kubeconfig: flags.kubeconfig }),
    ...(flags.context !== undefined && { context: flags.context }),
    ...(flags.reason !== undefined && { reason: flags.reason }),
    ...(flags.output !== undefined && { output: flags.output }),
    policy,
    requestedBy: startedBy(),
    incidents,
  });
  return code;
}
