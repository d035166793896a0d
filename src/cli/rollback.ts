import { appendFileSync } from 'node:fs';
import { CanaryError, EXIT, exitCodeOf, invalidInput, messageOf } from '../errors.js';
import { ConfigMapStateStore, CorruptRecordError } from '../k8s/configmap-state-store.js';
import { connect } from '../k8s/connection.js';
import { DeploymentWorkloads } from '../k8s/deployment-workloads.js';
import { findOwnedCanaryIngresses, setOwnedCanaryWeight, type OwnedCanaryIngress } from '../k8s/ingress-router.js';
import { recordEvent } from '../k8s/kube-events.js';
import { kubeRetryOf, type RetryOptions } from '../k8s/api-errors.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { targetNames, type Policy } from '../policy/policy.js';
import { escapeData, outputLine } from '../report/github-reporter.js';
import { systemClock } from '../rollout/clock.js';
import { rolloutIdFor } from '../rollout/engine.js';
import { StateConflictError, type IncidentResult, type StableStatus, type StoredRecord } from '../rollout/ports.js';
import { RECORD_SCHEMA_VERSION, type OutcomeResult, type RolloutRecord } from '../rollout/record.js';
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
  /**
   * The incident sinks, or how to build them. A builder runs only once traffic is at 0, so a
   * missing secret (SLACK_WEBHOOK_URL, ...) can never stand between the pager and the switch.
   */
  incidents: IncidentSink[] | (() => IncidentSink[]);
}

export interface RollbackReport {
  target: string;
  namespace: string;
  /** aborted (this command stopped it), or the earlier result when it was already over. */
  result: OutcomeResult;
  actions: string[];
  traffic: string;
  /** Every canary Ingress of ours, as re-read after the abort was recorded. */
  ingresses: { name: string; weight: number }[];
  stable: StableStatus | null;
  alreadyRolledBack: boolean;
  incidentUrl: string | null;
  record: RolloutRecord | null;
  exitCode: number;
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The reason goes into logs a CI runner scans for workflow commands (`::set-output`, `::error`),
 * so it must be one line: newlines and tabs (a multi-line workflow_dispatch input) become spaces,
 * and any other control character (a terminal escape) is refused.
 */
export function parseReason(raw: string | undefined): string {
  const reason = (raw ?? '').replace(/[\r\n\t\v\f]+/g, ' ').trim();
  if (!reason) throw invalidInput('--reason: expected a few words saying why, e.g. --reason "checkout 500s after deploy"; it goes into the record and the incident');
  const bad = CONTROL.exec(reason);
  if (bad) {
    const code = `U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    throw invalidInput(`--reason: expected plain text, got a control character (${code}); write the reason without terminal escapes`);
  }
  return reason;
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

interface ZeroedIngress {
  name: string;
  /** The weight found before our write, null when the annotation was missing. */
  from: number | null;
  /** Whether we wrote (weight above 0, or header/cookie routing to remove). */
  changed: boolean;
  overrides: string[];
}

/**
 * Sends every canary Ingress of ours to 0 (and strips header/cookie routing), one patch each.
 * All are tried even when one fails; the first failure is thrown after the others were attempted.
 */
async function zeroAll(kc: KubeConfig, namespace: string, owned: readonly OwnedCanaryIngress[], retry: RetryOptions): Promise<ZeroedIngress[]> {
  const done: ZeroedIngress[] = [];
  let failure: unknown;
  for (const ing of owned) {
    const needed = (ing.weight ?? 0) !== 0 || ing.overrides.length > 0;
    if (!needed) {
      done.push({ name: ing.name, from: ing.weight, changed: false, overrides: [] });
      continue;
    }
    try {
      await setOwnedCanaryWeight(kc, namespace, ing.name, 0, retry);
      done.push({ name: ing.name, from: ing.weight, changed: true, overrides: ing.overrides });
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure !== undefined) {
    const safe = done.map((d) => d.name);
    const note = safe.length ? ` (${safe.join(', ')} at 0%)` : '';
    if (failure instanceof CanaryError) throw new CanaryError(failure.kind, `${failure.message}${note}`, failure.details, { cause: failure });
    throw failure;
  }
  return done;
}

function describeZeroed(z: ZeroedIngress): string {
  const routing = z.overrides.length ? `; header/cookie routing removed (${z.overrides.map((a) => a.replace(/^nginx\.ingress\.kubernetes\.io\//, '')).join(', ')})` : '';
  if (!z.changed) return `canary Ingress ${z.name} already at 0%: all traffic is on stable`;
  if ((z.from ?? 0) === 0) return `canary Ingress ${z.name}: weight 0%${routing}, all traffic on stable`;
  return `canary Ingress ${z.name}: weight ${z.from ?? '?'}% → 0%${routing}, all traffic on stable`;
}

/**
 * `canary rollback NAME --reason TEXT`: every canary Ingress of ours goes to 0% first, whatever
 * state the record is in; then the abort is recorded (a running deploy sees it at its next write
 * and stops with exit 4) and the weights are checked again, because a deploy that had saved its
 * step before our abort may have raised its weight in between. Then the canary is scaled down,
 * stable verified, and the incidents opened. Running it twice is safe.
 */
export async function rollbackCommand(name: string, flags: RollbackFlags): Promise<{ code: number; report: RollbackReport }> {
  const target = parseTargetName(name);
  const format = parseOutput(flags.output);
  const reason = parseReason(flags.reason);
  const conn = connect({ ...(flags.kubeconfig && { kubeconfig: flags.kubeconfig }), ...(flags.context && { context: flags.context }) });
  const namespace = parseNamespace(flags.namespace ?? conn.defaultNamespace);
  const names = targetNames(target, flags.policy.target);
  const retry = kubeRetryOf(flags.policy.kubernetes);
  const actions: string[] = [];
  const say = (line: string) => {
    actions.push(line);
    if (format === 'text') process.stdout.write(`${line}\n`);
  };
  const finish = (report: Omit<RollbackReport, 'target' | 'namespace' | 'actions'>) => {
    const full: RollbackReport = { target, namespace, actions, ...report };
    if (format === 'json') process.stdout.write(`${JSON.stringify(full, null, 2)}\n`);
    return { code: full.exitCode, report: full };
  };

  // 1. Traffic, before anything else.
  const zeroed = await zeroAll(conn.kc, namespace, await findOwnedCanaryIngresses(conn.kc, namespace, target, retry), retry);
  let traffic: string;
  if (zeroed.length === 0) {
    traffic = `no canary Ingress of ours exists for ${target}: all traffic is on stable`;
    say(traffic);
  } else {
    for (const z of zeroed) say(describeZeroed(z));
    traffic = zeroed.map(describeZeroed).join('; ');
  }

  // 2. The record: mark the abort so a running deploy stops, and status tells the story.
  const store = new ConfigMapStateStore({ kc: conn.kc, namespace, target, retry });
  const now = systemClock.now();
  const at = new Date(now).toISOString();
  let record: RolloutRecord | null = null;
  let version: string | null = null;
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
    if (stored?.record.phase === 'promoted') {
      // Nothing to abort: the canary became stable. Traffic was still made safe above.
      return finish(await promotedAnswer(stored.record, conn.kc, namespace, names, retry, say));
    }
    const next = stored ? structuredClone(stored.record) : replacementRecord(target, namespace, flags.policy, replacing?.why ?? '', now);
    alreadyRolledBack = Boolean(stored && (next.phase === 'rolled-back' || next.phase === 'aborted') && next.weight === 0);
    next.rollback = next.rollback ?? { reason, requestedBy: flags.requestedBy, at };
    if (!alreadyRolledBack || !next.outcome) {
      next.phase = 'aborted';
      next.weight = 0;
      next.updatedAt = at;
      next.outcome = { result: 'aborted', reason: `rolled back by ${flags.requestedBy}: ${reason}`, at, exitCode: EXIT.aborted, traffic };
    }
    try {
      version = await store.save(next, stored?.version ?? replacing?.version ?? null);
      record = next;
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      // A running deploy wrote in between: read again and mark its newer record.
    }
  }
  if (!record) throw new CanaryError('unexpected', 'the rollout record kept changing while recording the rollback; traffic is on stable; run the command again');
  say(alreadyRolledBack ? `record ${record.id}: already rolled back (${record.outcome?.reason ?? 'no reason recorded'})` : `record ${record.id}: aborted by ${flags.requestedBy}: ${reason}`);

  // 3. A deploy that saved its step before our abort may have raised a weight since our first
  // write; it stops at its next save, but traffic must not wait for that.
  const ingresses = await settleWeights(conn.kc, namespace, target, retry, say);

  // 4. Scale the canary down and verify stable.
  const workloads = new DeploymentWorkloads({ kc: conn.kc, namespace, names, clock: systemClock, retry, pollMs: flags.policy.kubernetes.pollIntervalMs });
  try {
    const scaled = await workloads.scaleCanaryToZero();
    say(
      scaled === 'not-found'
        ? `Deployment ${names.canaryDeployment} not found: no canary pods to scale down`
        : scaled === 'already-zero'
          ? `Deployment ${names.canaryDeployment} already at 0 replicas`
          : `Deployment ${names.canaryDeployment} scaled to 0`,
    );
  } catch (err) {
    say(`could not scale ${names.canaryDeployment} down: ${messageOf(err)}`);
  }
  let stable: StableStatus | null = null;
  try {
    stable = await workloads.verifyStable();
    say(stable.available ? `stable verified: ${stable.message}` : `STABLE IS NOT AVAILABLE: ${stable.message}`);
  } catch (err) {
    say(`STABLE COULD NOT BE VERIFIED: ${messageOf(err)}`);
  }
  await recordEvent(conn.kc, namespace, names.stableDeployment, {
    reason: 'CanaryRolledBack',
    message: `rolled back by ${flags.requestedBy}: ${reason}; ${traffic}`,
    type: 'Warning',
  });

  // 5. What stable looked like goes into the record too, for status and the incident.
  if (!alreadyRolledBack && record.rollback) {
    record.rollback.stableVerified = stable?.available ?? false;
    record.rollback.stableMessage = stable?.message ?? 'stable could not be verified';
    const saved = await saveVerification(store, record, version);
    if (saved) record = saved;
    else say('could not store the stable verification in the record (it kept changing); traffic is on stable');
  }

  // 6. Incidents last, after traffic is safe; only for the rollback this command made. Building
  // the sinks may fail (a missing secret): that costs the incident, never the rollback.
  let incidentUrl: string | null = null;
  if (!alreadyRolledBack) {
    let sinks: IncidentSink[] = [];
    try {
      sinks = typeof flags.incidents === 'function' ? flags.incidents() : flags.incidents;
    } catch (err) {
      if (!(err instanceof CanaryError)) throw err;
      say(`incident not opened: ${messageOf(err)}`);
    }
    const final = record;
    const results = await Promise.all(
      sinks.map((sink) => sink.open(final).catch((err: unknown): IncidentResult => ({ sink: sink.name, ok: false, message: messageOf(err) }))),
    );
    for (const r of results) say(r.ok ? `incident opened in ${r.sink}${r.url ? `: ${r.url}` : ''}` : `incident sink ${r.sink} failed: ${r.message}`);
    incidentUrl = results.find((r) => r.ok && r.url)?.url ?? null;
  }

  // Traffic is safe either way; a stable that is not available (or could not be checked) is the one thing still wrong.
  const exitCode = stable?.available === true ? EXIT.ok : EXIT.unexpected;
  const result: OutcomeResult = alreadyRolledBack ? (record.outcome?.result ?? 'aborted') : 'aborted';
  return finish({ result, traffic, ingresses, stable, alreadyRolledBack, incidentUrl, record, exitCode });
}

/** Re-reads every canary Ingress of ours, sends any that is not at 0 back to 0, and says what is in force. */
async function settleWeights(
  kc: KubeConfig,
  namespace: string,
  target: string,
  retry: RetryOptions,
  say: (line: string) => void,
): Promise<{ name: string; weight: number }[]> {
  const owned = await findOwnedCanaryIngresses(kc, namespace, target, retry);
  const raised = owned.filter((i) => (i.weight ?? 0) !== 0 || i.overrides.length > 0);
  for (const z of await zeroAll(kc, namespace, raised, retry)) {
    say(`canary Ingress ${z.name} was raised to ${z.from ?? '?'}% after our first write (a deploy in flight): set to 0% again`);
  }
  const inForce = owned.map((i) => ({ name: i.name, weight: 0 }));
  if (inForce.length) say(`weight in force: ${inForce.map((i) => `${i.name} ${i.weight}%`).join(', ')}`);
  return inForce;
}

/** Stores rollback.stableVerified; a deploy stopping may write in between, so merge into its record. */
async function saveVerification(store: ConfigMapStateStore, record: RolloutRecord, version: string | null): Promise<RolloutRecord | null> {
  let next = record;
  let expected = version;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      await store.save(next, expected);
      return next;
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      const theirs = err.current;
      if (!theirs || theirs.record.id !== record.id) return null;
      next = structuredClone(theirs.record);
      next.rollback = { ...(next.rollback ?? record.rollback ?? { reason: '', requestedBy: '', at: record.updatedAt }), ...pickVerification(record) };
      expected = theirs.version;
    }
  }
  return null;
}

function pickVerification(record: RolloutRecord): { stableVerified?: boolean; stableMessage?: string } {
  const r = record.rollback;
  return {
    ...(r?.stableVerified !== undefined && { stableVerified: r.stableVerified }),
    ...(r?.stableMessage !== undefined && { stableMessage: r.stableMessage }),
  };
}

/**
 * After a promotion the canary image is stable: setting weights cannot undo that, and claiming an
 * abort would be a lie. Say what is true and what would undo it; exit 1, no incident, no record change.
 */
async function promotedAnswer(
  record: RolloutRecord,
  kc: KubeConfig,
  namespace: string,
  names: ReturnType<typeof targetNames>,
  retry: RetryOptions,
  say: (line: string) => void,
): Promise<Omit<RollbackReport, 'target' | 'namespace' | 'actions'>> {
  const ingresses = await settleWeights(kc, namespace, record.target, retry, say);
  let image = record.images.stable ?? record.images.canary;
  try {
    image = (await new DeploymentWorkloads({ kc, namespace, names, clock: systemClock, retry }).stableImage()) ?? image;
  } catch {
    // The record's image is still the best answer we have.
  }
  const when = record.outcome?.at ?? record.updatedAt;
  say(
    `rollout ${record.id} was promoted at ${when}; stable runs ${image}; canary rollback cannot undo a promotion: run kubectl rollout undo deployment/${names.stableDeployment} -n ${namespace}`,
  );
  const traffic = 'canary at 0%, all traffic on stable (which runs the promoted image)';
  return { result: 'promoted', traffic, ingresses, stable: null, alreadyRolledBack: false, incidentUrl: null, record, exitCode: EXIT.unexpected };
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

/** GitHub Actions step outputs and a short job summary, so a workflow can act on the rollback. */
export function writeGitHubRollbackOutputs(
  env: NodeJS.ProcessEnv,
  target: string,
  outcome: { result: OutcomeResult | 'failed'; exitCode: number; report?: RollbackReport; error?: string },
): void {
  if (env['GITHUB_ACTIONS'] !== 'true') return;
  const { report } = outcome;
  const finalWeight = report ? String(Math.max(0, ...report.ingresses.map((i) => i.weight))) : '';
  const write = (path: string | undefined, text: string, what: string) => {
    if (!path) return;
    try {
      appendFileSync(path, text);
    } catch (err) {
      process.stderr.write(`::warning::${escapeData(`could not write the ${what} to ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`)}\n`);
    }
  };
  write(
    env['GITHUB_OUTPUT'],
    [
      outputLine('result', outcome.result),
      outputLine('rollout-id', report?.record?.id ?? ''),
      outputLine('final-weight', finalWeight),
      outputLine('exit-code', String(outcome.exitCode)),
      outputLine('incident-url', report?.incidentUrl ?? ''),
    ].join(''),
    'step outputs',
  );
  const lines = [`## canary rollback ${target}: ${outcome.result} (exit ${outcome.exitCode})`, ''];
  if (report) for (const a of report.actions) lines.push(`- ${a.replace(/\r?\n/g, ' ')}`);
  if (outcome.error) lines.push(`- failed: ${outcome.error.replace(/\r?\n/g, ' ')}`);
  write(env['GITHUB_STEP_SUMMARY'], `${lines.join('\n')}\n`, 'job summary');
}

/** The commander entry point: loads the policy, rolls back, then (in Actions) writes the outputs. */
export async function rollbackFromFlags(name: string, flags: RollbackCliFlags): Promise<number> {
  const env = process.env;
  const policy = loadPolicy(flags.policy);
  try {
    const { code, report } = await rollbackCommand(name, {
      ...(flags.namespace !== undefined && { namespace: flags.namespace }),
      ...(flags.kubeconfig !== undefined && { kubeconfig: flags.kubeconfig }),
      ...(flags.context !== undefined && { context: flags.context }),
      ...(flags.reason !== undefined && { reason: flags.reason }),
      ...(flags.output !== undefined && { output: flags.output }),
      policy,
      requestedBy: startedBy(),
      // Built after traffic is at 0: reading secrets must never delay or block the switch.
      incidents: () => makeIncidentSinks(policy, { enabled: flags.incident !== false, dryRun: false }),
    });
    writeGitHubRollbackOutputs(env, name, { result: report.result, exitCode: code, report });
    return code;
  } catch (err) {
    writeGitHubRollbackOutputs(env, name, { result: 'failed', exitCode: exitCodeOf(err), error: messageOf(err) });
    throw err;
  }
}
