import { EXIT, invalidInput } from '../errors.js';
import { kubeRetryOf } from '../k8s/api-errors.js';
import { ConfigMapStateStore } from '../k8s/configmap-state-store.js';
import { connect } from '../k8s/connection.js';
import { systemClock } from '../rollout/clock.js';
import { awaitAck, issueControl } from '../rollout/control-issue.js';
import type { ControlAck, ControlKind } from '../rollout/control-types.js';
import { controlWords, MAX_CONTROL_TEXT } from '../rollout/controls.js';
import type { RolloutRecord } from '../rollout/record.js';
import { startedBy } from './common.js';
import { parseNamespace, parseOutput, parseTargetName } from './parse-flags.js';
import { parseReason } from './rollback.js';

// What `canary promote`, `pause` and `resume` share: the connection (the flags of `canary
// rollback`), the fenced write of the control (src/rollout/control-issue.ts), the bounded wait for
// the deploy's answer, and the exit code. Each command's own file only names its control.

export interface ControlCliFlags {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  policy?: string;
  output?: string;
  reason?: string;
  /** How long to wait for the deploy to answer (default 30s). */
  timeout?: string;
  /** The rollout id the operator means (e.g. from `canary status`): a record holding another is refused. */
  rollout?: string;
}

/** Exit codes of the control commands (README's table). */
export const CONTROL_EXIT = {
  /** Written, and the deploy answered that it applied it. */
  acknowledged: EXIT.ok,
  /** Refused (a stale view, a rollout over or stopping, or the deploy refused it) or not acted on: nothing changed. */
  refused: EXIT.invalidInput,
  /** Written, but no deploy answered within --timeout: it may be stalled; the control waits in the record. */
  unanswered: 6,
} as const;

const DEFAULT_ACK_TIMEOUT_MS = 30_000;
const POLL_MS = 500;

const clockTime = (iso: string) => iso.slice(11, 19);

function where(record: RolloutRecord): string {
  const step = record.policy.steps[record.stepIndex];
  return record.phase === 'progressing' && step ? `step ${record.stepIndex + 1}/${record.policy.steps.length} at ${record.weight}%` : `${record.phase} at ${record.weight}%`;
}

/** --timeout 30s, 2m, 1500ms: how long to wait for the deploy's answer. */
function parseAckTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_ACK_TIMEOUT_MS;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(value.trim());
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000) : NaN;
  if (!(ms >= 1000 && ms <= 3_600_000)) {
    throw invalidInput(`--timeout: expected how long to wait for the running deploy to acknowledge, from 1s to 60m, like "30s" or "2m", got "${value}"`);
  }
  return ms;
}

function parseRolloutId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[a-z0-9][-a-zA-Z0-9.:]{0,252}$/.test(value)) throw invalidInput(`--rollout: expected a rollout id as \`canary status\` shows it (like "checkout-20260115T100000Z"), got "${value}"`);
  return value;
}

interface ControlReport {
  result: 'acknowledged' | 'refused' | 'not-acted-on' | 'unanswered';
  exitCode: number;
  message: string;
  rolloutId: string | null;
  control?: { id: string; kind: ControlKind; by: string; at: string };
  ack?: ControlAck;
}

async function writeGitHubOutputs(env: NodeJS.ProcessEnv, report: ControlReport): Promise<void> {
  if (env['GITHUB_ACTIONS'] !== 'true' || !env['GITHUB_OUTPUT']) return;
  const [{ appendRedacted }, { redact }, { outputLine }] = await Promise.all([import('../redaction/sinks.js'), import('../redaction/registry.js'), import('../report/github-reporter.js')]);
  const lines = [outputLine('result', report.result), outputLine('rollout-id', report.rolloutId ?? ''), outputLine('exit-code', String(report.exitCode))].join('');
  try {
    appendRedacted(env['GITHUB_OUTPUT'], redact(lines));
  } catch (err) {
    process.stderr.write(`::warning::could not write the step outputs (${(err as NodeJS.ErrnoException).code ?? String(err)})\n`);
  }
}

/** Runs one control command end to end; returns its exit code. */
export async function runControl(name: string, kind: ControlKind, flags: ControlCliFlags): Promise<number> {
  const target = parseTargetName(name);
  const format = parseOutput(flags.output);
  const reason = flags.reason === undefined ? undefined : parseReason(flags.reason);
  if (reason !== undefined && reason.length > MAX_CONTROL_TEXT) {
    throw invalidInput(`--reason: expected at most ${MAX_CONTROL_TEXT} characters (it is kept in the rollout record and shown by \`canary status\`), got ${reason.length}`);
  }
  const timeoutMs = parseAckTimeout(flags.timeout);
  const rolloutId = parseRolloutId(flags.rollout);
  const conn = connect({ ...(flags.kubeconfig && { kubeconfig: flags.kubeconfig }), ...(flags.context && { context: flags.context }) });
  const namespace = parseNamespace(flags.namespace ?? conn.defaultNamespace);
  const policy = flags.policy !== undefined ? (await import('../policy/loader.js')).loadPolicy(flags.policy) : undefined;
  const store = new ConfigMapStateStore({ kc: conn.kc, namespace, target, ...(policy && { retry: kubeRetryOf(policy.kubernetes) }) });
  const words = `canary ${controlWords(kind)} ${target}`;
  const say = (line: string) => {
    if (format === 'text') process.stdout.write(`${line}\n`);
  };

  const finish = async (report: ControlReport): Promise<number> => {
    if (format === 'json') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else if (report.exitCode !== EXIT.ok) process.stderr.write(`canary: ${report.message}\n`);
    await writeGitHubOutputs(process.env, report);
    return report.exitCode;
  };

  const issued = await issueControl(store, {
    kind,
    by: startedBy(),
    ...(reason !== undefined && { reason }),
    ...(rolloutId !== undefined && { rolloutId }),
    now: () => new Date(systemClock.now()).toISOString(),
  });
  if (issued.kind === 'refused') {
    if (!issued.record) throw invalidInput(`no rollout of ${target} in namespace ${namespace} to ${controlWords(kind)}: ${issued.message} (ConfigMap ${target}-canary-rollout; check the name, -n and --context)`);
    return finish({ result: 'refused', exitCode: CONTROL_EXIT.refused, message: `${words}: refused: ${issued.message}`, rolloutId: issued.record.id });
  }
  const { control, record } = issued;
  const controlView = { id: control.id, kind, by: control.by, at: control.at };
  say(`${words}: written at ${clockTime(control.at)} by ${control.by} for rollout ${record.id} (${where(record)})${reason ? `, reason: ${reason}` : ''}`);
  say(`waiting up to ${Math.round(timeoutMs / 1000)}s for the running deploy to acknowledge it…`);
  const answer = await awaitAck(store, control, { timeoutMs, pollMs: POLL_MS, clock: systemClock });
  if (answer.kind === 'acknowledged') {
    const { ack } = answer;
    const line = `the deploy at ${ack.weight}% ${ack.outcome === 'applied' ? 'acknowledged' : 'refused it'} at ${clockTime(ack.at)}: ${ack.message}`;
    say(line);
    const exitCode = ack.outcome === 'applied' ? CONTROL_EXIT.acknowledged : CONTROL_EXIT.refused;
    return finish({ result: ack.outcome === 'applied' ? 'acknowledged' : 'refused', exitCode, message: `${words}: ${line}`, rolloutId: record.id, control: controlView, ack });
  }
  if (answer.kind === 'ended') {
    return finish({ result: 'not-acted-on', exitCode: CONTROL_EXIT.refused, message: `${words}: not acted on: ${answer.message}`, rolloutId: record.id, control: controlView });
  }
  const unanswered = `no deploy answered within ${Math.round(timeoutMs / 1000)}s: it may be stalled (see \`canary status ${target} -n ${namespace}\`); the control stays in the record and the deploy driving rollout ${record.id} (or a \`--resume\` of it) acts on it at its next check`;
  return finish({ result: 'unanswered', exitCode: CONTROL_EXIT.unanswered, message: `${words}: ${unanswered}`, rolloutId: record.id, control: controlView });
}
