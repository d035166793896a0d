import { CanaryError, exitCodeOf, invalidInput, messageOf } from '../errors.js';
import { kubeRetryOf } from '../k8s/api-errors.js';
import { connect, type KubeConnection } from '../k8s/connection.js';
import { createStopRouter } from '../k8s/router-factory.js';
import { targetNames, type Policy } from '../policy/policy.js';
import { DEFAULT_STOP_DEADLINE_MS, type CommandContext } from '../rollout/abort.js';
import type { OwnRouteState } from '../rollout/ports.js';
import { systemClock } from '../rollout/clock.js';
import type { RollbackReport } from '../rollout/operator-rollback.js';
import type { OutcomeResult } from '../rollout/record.js';
import { parseNamespace, parseOutput, parseStopTimeout, parseTargetName } from './parse-flags.js';

// `canary rollback`: connection, flags and output. What it does is the rollout layer's one stop
// path (src/rollout/operator-rollback.ts over src/rollout/abort.ts). Only what the first 0%
// write needs is imported statically; the policy, record store, workloads, events, incident
// sinks and reporters are loaded after that write.

export type { RollbackReport } from '../rollout/operator-rollback.js';

export interface RollbackCliFlags {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  reason?: string;
  output?: string;
  policy?: string;
  incident?: boolean;
  /** How long to keep driving the canary to 0% (default 30s). */
  timeout?: string;
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

/** The per-call bound of the first write, before the policy (and its kubernetes.timeout) is read. */
const FIRST_WRITE_TIMEOUT_MS = 10_000;

/**
 * One 0% write (with the stop marker) to every canary Ingress of ours, found by label: it needs
 * no policy, no record and no names, so it goes first. A failure here is not final: the stop
 * path that follows keeps trying until its deadline and reports what the API holds.
 */
async function firstWrite(conn: KubeConnection, ctx: CommandContext, marker: string, deadlineMs: number): Promise<OwnRouteState[] | null> {
  // Before the policy is read, every router's canary routes are stopped (found by our marks).
  const router = createStopRouter(undefined, { kc: conn.kc, namespace: ctx.namespace, names: targetNames(ctx.target, {}), target: ctx.target, rolloutId: '' }, false);
  try {
    return await router.stop(marker, { timeoutMs: Math.min(FIRST_WRITE_TIMEOUT_MS, deadlineMs) });
  } catch (err) {
    // Refused (403, an admission webhook): trying again will not help, and the operator must see it.
    if (err instanceof CanaryError && err.kind !== 'unreachable') throw err;
    return null;
  }
}

/** Everything after the first write: the policy, the one stop path, the record, the incidents. */
async function rollbackAfterFirstWrite(
  conn: KubeConnection,
  ctx: CommandContext,
  flags: RollbackCliFlags,
  reason: string,
  deadlineMs: number,
  firstFound: OwnRouteState[] | null,
  say: (line: string) => void,
): Promise<RollbackReport> {
  const [{ loadPolicy }, { ConfigMapStateStore, CorruptRecordError }, { DeploymentWorkloads }, { recordEvent }, { StoppedLeaseCleaner }, { operatorRollback }, common] =
    await Promise.all([
      import('../policy/loader.js'),
      import('../k8s/configmap-state-store.js'),
      import('../k8s/deployment-workloads.js'),
      import('../k8s/kube-events.js'),
      import('../k8s/stopped-lease.js'),
      import('../rollout/operator-rollback.js'),
      import('./common.js'),
    ]);
  const policy: Policy = loadPolicy(flags.policy);
  const { namespace, target } = ctx;
  const names = targetNames(target, policy.target);
  const k = policy.kubernetes;
  const retry = kubeRetryOf(k);
  const store = new ConfigMapStateStore({ kc: conn.kc, namespace, target, retry });
  const requestedBy = common.startedBy();
  return operatorRollback(
    {
      router: createStopRouter(policy.traffic, { kc: conn.kc, namespace, names, target, rolloutId: '', retry }, true),
      workloads: new DeploymentWorkloads({ kc: conn.kc, namespace, names, clock: systemClock, retry, pollMs: k.pollIntervalMs, readyTimeoutMs: k.readyTimeoutMs }),
      loadRecord: async () => {
        try {
          const stored = await store.load();
          return stored ? { kind: 'found', stored } : { kind: 'missing' };
        } catch (err) {
          if (err instanceof CorruptRecordError) return { kind: 'corrupt', why: err.message, version: err.version };
          throw err;
        }
      },
      saveRecord: (record, expected) => store.save(record, expected),
      lease: new StoppedLeaseCleaner(conn.kc, namespace, target, retry),
      event: (eventReason, message) => recordEvent(conn.kc, namespace, names.stableDeployment, { reason: eventReason, message, type: 'Warning' }),
      // Building the sinks may fail (a missing secret): that costs the incident, never the rollback.
      openIncidents: async (record) => {
        const sinks = common.makeIncidentSinks(policy, { enabled: flags.incident !== false, dryRun: false });
        return Promise.all(
          sinks.map((sink) => sink.open(record).catch((err: unknown) => ({ sink: sink.name, ok: false, message: messageOf(err) }))),
        );
      },
    },
    {
      ctx,
      names,
      policy,
      reason,
      requestedBy,
      clock: systemClock,
      deadlineMs,
      callTimeoutMs: k.timeoutMs,
      incidents: flags.incident !== false,
      ...(firstFound && { firstFound }),
      say,
    },
  );
}

/** GitHub Actions step outputs and a short job summary, so a workflow can act on the rollback. */
async function writeGitHubRollbackOutputs(
  env: NodeJS.ProcessEnv,
  target: string,
  outcome: { result: OutcomeResult | 'failed' | 'nothing-to-roll-back'; exitCode: number; report?: RollbackReport; error?: string },
): Promise<void> {
  if (env['GITHUB_ACTIONS'] !== 'true') return;
  const [{ appendRedacted }, { redact }, { escapeData, outputLine }] = await Promise.all([
    import('../redaction/sinks.js'),
    import('../redaction/registry.js'),
    import('../report/github-reporter.js'),
  ]);
  const { report } = outcome;
  const finalWeight = report ? String(Math.max(0, ...report.ingresses.map((i) => i.weight))) : '';
  const write = (path: string | undefined, text: string, what: string) => {
    if (!path) return;
    try {
      // The summary quotes actions and errors: through the redaction boundary like every writer.
      appendRedacted(path, redact(text));
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

/** The commander entry point. */
export async function rollbackFromFlags(name: string, flags: RollbackCliFlags): Promise<number> {
  const env = process.env;
  try {
    const target = parseTargetName(name);
    const format = parseOutput(flags.output);
    const reason = parseReason(flags.reason);
    const deadlineMs = parseStopTimeout(flags.timeout, DEFAULT_STOP_DEADLINE_MS);
    const conn = connect({ ...(flags.kubeconfig && { kubeconfig: flags.kubeconfig }), ...(flags.context && { context: flags.context }) });
    const namespace = parseNamespace(flags.namespace ?? conn.defaultNamespace);
    const ctx: CommandContext = {
      target,
      namespace,
      ...(flags.context !== undefined && { context: flags.context }),
      ...(flags.kubeconfig !== undefined && { kubeconfig: flags.kubeconfig }),
      ...(flags.policy !== undefined && { policyPath: flags.policy }),
    };
    // The deadline counts from the process start: loading the CLI is part of what the pager waits for.
    const deadlineAt = Date.now() - process.uptime() * 1000 + deadlineMs;
    const left = () => deadlineAt - systemClock.now();
    const firstFound = await firstWrite(conn, ctx, `canary rollback at ${new Date().toISOString()}: ${reason}`, Math.max(1000, left()));
    const say = (line: string) => {
      if (format === 'text') process.stdout.write(`${line}\n`);
    };
    const report = await rollbackAfterFirstWrite(conn, ctx, flags, reason, Math.max(1, left()), firstFound, say);
    if (format === 'json') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    await writeGitHubRollbackOutputs(env, name, { result: report.result, exitCode: report.exitCode, report });
    return report.exitCode;
  } catch (err) {
    await writeGitHubRollbackOutputs(env, name, { result: 'failed', exitCode: exitCodeOf(err), error: messageOf(err) });
    throw err;
  }
}
