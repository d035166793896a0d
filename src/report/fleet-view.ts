import { formatDuration } from '../policy/units.js';
import { FINAL_PHASES, type RolloutRecord } from '../rollout/record.js';

// `canary status --all`: one line per rollout record the user can see, and whether any of them
// needs a person (stalled, or finished with the canary still taking traffic). Pure: the command
// (src/cli/status-all.ts) lists the objects, this decides and renders.

/** Exit code of `status --all` when a rollout needs a person (docs/commands.md). */
export const FLEET_ATTENTION_EXIT = 6;

export type FleetProblem = 'stalled' | 'unsafe-weight' | 'unreadable';

export interface FleetInput {
  namespace: string;
  /** The ConfigMap's name (NAME-canary-rollout). */
  configMap: string;
  /** The parsed record, or why it could not be read. */
  record: RolloutRecord | { unreadable: string };
  /** The highest weight on the canary Ingresses we own for this target; null when there are none. */
  liveWeight: number | null;
  lease: { holder: string; expired: boolean } | null;
}

export interface FleetRow {
  namespace: string;
  target: string;
  phase: RolloutRecord['phase'] | 'unreadable';
  weight: { recorded: number | null; live: number | null };
  /** 1-based step and how many the plan has, while in steps. */
  step: { index: number; of: number } | null;
  startedAt: string | null;
  age: string;
  lastVerdict: string | null;
  startedBy: string | null;
  lease: { holder: string; expired: boolean } | null;
  problem: FleetProblem | null;
  /** Held by an operator's pause or a step's own pause (checks go on): PAUSED in the STATE column. */
  paused: boolean;
  /** In words, when there is a problem. */
  attention: string | null;
}

export interface FleetView {
  rollouts: FleetRow[];
  /** Rollouts that need a person. */
  problems: number;
}

const targetOf = (configMap: string) => configMap.replace(/-canary-rollout$/, '');

function ageOf(fromIso: string | null, now: number): string {
  if (!fromIso) return '-';
  const t = Date.parse(fromIso);
  if (!Number.isFinite(t)) return '-';
  const ms = Math.max(0, now - t);
  return ms < 1000 ? '0s' : formatDuration(Math.floor(ms / 1000) * 1000);
}

export function fleetRow(input: FleetInput, now: number): FleetRow {
  const { record } = input;
  if ('unreadable' in record) {
    return {
      namespace: input.namespace,
      target: targetOf(input.configMap),
      phase: 'unreadable',
      weight: { recorded: null, live: input.liveWeight },
      step: null,
      startedAt: null,
      age: '-',
      lastVerdict: null,
      startedBy: null,
      lease: input.lease,
      problem: 'unreadable',
      paused: false,
      attention: `the record in ConfigMap ${input.configMap} is unreadable (${record.unreadable}); \`canary rollback ${targetOf(input.configMap)} -n ${input.namespace}\` still works`,
    };
  }
  const final = FINAL_PHASES.includes(record.phase);
  const live = input.liveWeight;
  // A finished rollout is safe only at 0%: what the Ingress says when we can read it, else the record.
  const left = final ? (live ?? record.weight) : 0;
  const stalled = !final && (!input.lease || input.lease.expired);
  let problem: FleetProblem | null = null;
  let attention: string | null = null;
  if (final && left > 0) {
    problem = 'unsafe-weight';
    attention = `${record.phase}, but the canary still takes ${left}% of traffic and nothing judges it`;
  } else if (stalled) {
    problem = 'stalled';
    attention = `stalled: no deploy holds the lease${input.lease ? ` (expired, last held by ${input.lease.holder})` : ''}; the canary keeps ${live ?? record.weight}% of traffic`;
  }
  const inSteps = record.phase === 'progressing' || record.phase === 'initializing';
  return {
    namespace: record.namespace || input.namespace,
    target: record.target || targetOf(input.configMap),
    phase: record.phase,
    weight: { recorded: record.weight, live },
    step: inSteps ? { index: record.stepIndex + 1, of: record.policy?.steps?.length ?? 0 } : null,
    startedAt: record.startedAt ?? null,
    age: ageOf(record.startedAt ?? null, now),
    lastVerdict: record.checks?.at(-1)?.verdict ?? null,
    startedBy: record.resumedBy ?? record.startedBy ?? null,
    lease: input.lease,
    problem,
    paused: !final && Boolean(record.controls?.paused ?? record.controls?.stepPause),
    attention,
  };
}

export function fleetView(inputs: readonly FleetInput[], now: number): FleetView {
  const rollouts = inputs.map((i) => fleetRow(i, now)).sort((a, b) => a.namespace.localeCompare(b.namespace) || a.target.localeCompare(b.target));
  return { rollouts, problems: rollouts.filter((r) => r.problem !== null).length };
}

export function fleetExitCode(view: FleetView): number {
  return view.problems > 0 ? FLEET_ATTENTION_EXIT : 0;
}

const pct = (n: number | null) => (n === null ? '-' : `${n}%`);

/** One line per rollout under a header; the problems' reasons follow the table. */
export function renderFleet(view: FleetView): string {
  if (view.rollouts.length === 0) return 'no rollout records found (ConfigMaps NAME-canary-rollout labelled app.kubernetes.io/managed-by=canary-cli)';
  const header = ['NAMESPACE', 'TARGET', 'PHASE', 'WEIGHT (REC/LIVE)', 'STEP', 'AGE', 'LAST VERDICT', 'STARTED BY', 'STATE'];
  const rows = view.rollouts.map((r) => [
    r.namespace,
    r.target,
    r.phase,
    `${pct(r.weight.recorded)}/${pct(r.weight.live)}`,
    r.step ? `${r.step.index}/${r.step.of}` : '-',
    r.age,
    r.lastVerdict ?? '-',
    r.startedBy ?? '-',
    r.problem ? r.problem.toUpperCase() : r.paused ? 'PAUSED' : 'ok',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  const out = [line(header), ...rows.map(line)];
  for (const r of view.rollouts) if (r.attention) out.push(`${r.namespace}/${r.target}: ${r.attention}`);
  return out.join('\n');
}
