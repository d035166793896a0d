import { Counter, Gauge, Registry } from 'prom-client';
import type { CheckRecord } from '../analysis/types.js';
import type { Outcome, OutcomeResult, Phase, RolloutRecord } from '../rollout/record.js';

// The rollout and DORA metrics of one target, as a prom-client registry: pure (no I/O), built
// afresh from what the reporter saw, so every push carries the whole group (docs/metrics.md).

export const PHASES: readonly Phase[] = ['initializing', 'progressing', 'promoting', 'watching', 'promoted', 'rolling-back', 'rolled-back', 'aborted', 'failed', 'rolled-back-after-promotion'];
export const OUTCOMES: readonly OutcomeResult[] = ['promoted', 'rolled-back', 'aborted', 'failed', 'rolled-back-after-promotion'];
/** Outcomes that count as a failed change (DORA change failure rate): the change had to be taken back. */
export const FAILURE_OUTCOMES: readonly OutcomeResult[] = ['rolled-back', 'failed', 'rolled-back-after-promotion'];

/** The DORA counters' values as the Pushgateway held them before this rollout, per outcome. */
export interface DoraCounts {
  deployments: Partial<Record<OutcomeResult, number>>;
  failures: Partial<Record<OutcomeResult, number>>;
}

export interface RolloutMetricsState {
  record: RolloutRecord;
  /** The DORA series' environment label. */
  environment: string;
  phase: Phase;
  weight: number;
  stepIndex: number;
  lastCheck?: CheckRecord;
  outcome?: Outcome;
  /** When the outcome was known (ms), for time to restore. */
  finishedAt?: number;
  /** The commit's time (ms since the epoch), for lead time; absent: no lead time series. */
  commitTimeMs?: number;
  /** What the Pushgateway held before this rollout; the counters continue from it. */
  previous: DoraCounts;
}

export const METRIC_NAMES = {
  info: 'canary_rollout_info',
  weight: 'canary_rollout_weight',
  phase: 'canary_rollout_phase',
  step: 'canary_rollout_step',
  started: 'canary_rollout_started_timestamp_seconds',
  checks: 'canary_rollout_checks',
  checkValue: 'canary_rollout_check_value',
  checkThreshold: 'canary_rollout_check_threshold',
  checkVerdict: 'canary_rollout_check_verdict',
  checkEvidence: 'canary_rollout_check_evidence',
  outcome: 'canary_rollout_outcome',
  deployments: 'deployments_total',
  failures: 'deployment_failures_total',
  leadTime: 'deployment_lead_time_seconds',
  recovery: 'incident_recovery_time_minutes',
} as const;

const VERDICTS = ['pass', 'fail', 'inconclusive', 'pending', 'info'] as const;

/** Lead time from commit to promotion, in seconds; undefined unless promoted with a commit time. */
export function leadTimeSeconds(state: Pick<RolloutMetricsState, 'outcome' | 'commitTimeMs'>): number | undefined {
  if (state.outcome?.result !== 'promoted' || state.commitTimeMs === undefined) return undefined;
  const promoted = Date.parse(state.outcome.at);
  if (!Number.isFinite(promoted) || promoted < state.commitTimeMs) return undefined;
  return (promoted - state.commitTimeMs) / 1000;
}

/** Time to restore in minutes: the rollback decided → stable verified; undefined unless stable was verified. */
export function recoveryMinutes(state: Pick<RolloutMetricsState, 'record' | 'outcome' | 'finishedAt'>): number | undefined {
  const rollback = state.record.rollback;
  if (!state.outcome || state.outcome.result === 'promoted' || !rollback?.stableVerified) return undefined;
  const decided = Date.parse(rollback.at);
  const verified = state.finishedAt ?? Date.parse(state.outcome.at);
  if (!Number.isFinite(decided) || !Number.isFinite(verified) || verified < decided) return undefined;
  return (verified - decided) / 60_000;
}

export function buildRegistry(state: RolloutMetricsState): Registry {
  const registry = new Registry();
  const registers = [registry];
  const target = state.record.target;

  new Gauge({
    name: METRIC_NAMES.info,
    help: 'The rollout this group describes (always 1): id, images, who started it, policy.',
    labelNames: ['target', 'id', 'canary_image', 'stable_image', 'started_by', 'policy'],
    registers,
  }).set(
    {
      target,
      id: state.record.id,
      canary_image: state.record.images.canary,
      stable_image: state.record.images.stable ?? '',
      started_by: state.record.resumedBy ?? state.record.startedBy,
      policy: state.record.policy.name,
    },
    1,
  );
  new Gauge({ name: METRIC_NAMES.weight, help: 'Percent of traffic routed to the canary, as the rollout last set it.', labelNames: ['target'], registers }).set({ target }, state.weight);
  const phase = new Gauge({ name: METRIC_NAMES.phase, help: 'The rollout phase: 1 for the current phase, 0 for the others.', labelNames: ['target', 'phase'], registers });
  for (const p of PHASES) phase.set({ target, phase: p }, p === state.phase ? 1 : 0);
  new Gauge({ name: METRIC_NAMES.step, help: 'Index (0-based) of the current step of the policy.', labelNames: ['target'], registers }).set({ target }, state.stepIndex);
  const started = Date.parse(state.record.startedAt);
  if (Number.isFinite(started)) {
    new Gauge({ name: METRIC_NAMES.started, help: 'When the rollout started (Unix seconds).', labelNames: ['target'], registers }).set({ target }, started / 1000);
  }
  const tallies = state.record.tallies;
  if (tallies) {
    const checks = new Gauge({ name: METRIC_NAMES.checks, help: 'Checks of this rollout so far, by verdict.', labelNames: ['target', 'verdict'], registers });
    checks.set({ target, verdict: 'pass' }, tallies.passed);
    checks.set({ target, verdict: 'fail' }, tallies.failed);
    checks.set({ target, verdict: 'inconclusive' }, tallies.inconclusive);
    checks.set({ target, verdict: 'pending' }, tallies.pending);
  }

  if (state.lastCheck) addCheck(registry, target, state.lastCheck);

  if (state.outcome) {
    const outcome = new Gauge({ name: METRIC_NAMES.outcome, help: 'How the rollout ended: 1 for its result, 0 for the others.', labelNames: ['target', 'result'], registers });
    for (const o of OUTCOMES) outcome.set({ target, result: o }, o === state.outcome.result ? 1 : 0);
  }

  // DORA: every outcome's series exists from the first push (at 0), so the first rollout that
  // ends with it is a rise increase() can see, not a series born at 1.
  const labels = (outcome: OutcomeResult) => ({ environment: state.environment, target, outcome });
  const deployments = new Counter({
    name: METRIC_NAMES.deployments,
    help: 'Rollouts that ended, by outcome (continued across pushes: read back from the Pushgateway before each rollout).',
    labelNames: ['environment', 'target', 'outcome'],
    registers,
  });
  const failures = new Counter({
    name: METRIC_NAMES.failures,
    help: 'Rollouts whose change had to be taken back (rolled back by analysis, or failed), by outcome.',
    labelNames: ['environment', 'target', 'outcome'],
    registers,
  });
  for (const o of OUTCOMES) {
    const done = state.outcome?.result === o ? 1 : 0;
    deployments.inc(labels(o), (state.previous.deployments[o] ?? 0) + done);
    if (FAILURE_OUTCOMES.includes(o)) failures.inc(labels(o), (state.previous.failures[o] ?? 0) + done);
  }
  const lead = leadTimeSeconds(state);
  if (lead !== undefined) {
    new Gauge({ name: METRIC_NAMES.leadTime, help: 'Lead time for changes: commit time to promotion of the last promoted rollout, seconds.', labelNames: ['environment', 'target'], registers }).set(
      { environment: state.environment, target },
      lead,
    );
  }
  const recovery = recoveryMinutes(state);
  if (recovery !== undefined) {
    new Gauge({ name: METRIC_NAMES.recovery, help: 'Time to restore service: rollback decided to stable verified, minutes.', labelNames: ['environment', 'target'], registers }).set(
      { environment: state.environment, target },
      recovery,
    );
  }
  return registry;
}

function addCheck(registry: Registry, target: string, check: CheckRecord): void {
  const registers = [registry];
  const value = new Gauge({ name: METRIC_NAMES.checkValue, help: "The last check's measured value per metric and side (canary, stable), in the metric's unit.", labelNames: ['target', 'metric', 'check', 'side', 'unit'], registers });
  const threshold = new Gauge({ name: METRIC_NAMES.checkThreshold, help: 'The limit the canary was held to in the last check.', labelNames: ['target', 'metric', 'check', 'unit'], registers });
  const verdict = new Gauge({ name: METRIC_NAMES.checkVerdict, help: "The last check's verdict per metric: 1 for its verdict, 0 for the others.", labelNames: ['target', 'metric', 'check', 'verdict'], registers });
  const evidence = new Gauge({ name: METRIC_NAMES.checkEvidence, help: "The judge's numeric evidence behind the last check's verdict (counts, bounds, statistics).", labelNames: ['target', 'metric', 'check', 'name'], registers });
  for (const r of check.results) {
    const base = { target, metric: r.metric, check: r.check };
    for (const side of ['canary', 'stable'] as const) {
      const v = r[side];
      if (v !== null && Number.isFinite(v)) value.set({ ...base, side, unit: r.unit }, v);
    }
    if (r.threshold !== null && Number.isFinite(r.threshold)) threshold.set({ ...base, unit: r.unit }, r.threshold);
    for (const v of VERDICTS) verdict.set({ ...base, verdict: v }, v === r.verdict ? 1 : 0);
    for (const [name, v] of Object.entries(r.evidence ?? {})) {
      if (typeof v === 'number' && Number.isFinite(v)) evidence.set({ ...base, name }, v);
    }
  }
}

/** The exposition text (Prometheus text format 0.0.4) and its content type. */
export async function exposition(state: RolloutMetricsState): Promise<{ body: string; contentType: string }> {
  const registry = buildRegistry(state);
  return { body: await registry.metrics(), contentType: registry.contentType };
}

/**
 * Reads the DORA counters of one group from the Pushgateway's /api/v1/metrics answer. Returns
 * undefined when the answer is not what the Pushgateway sends; empty counts when the group is new.
 */
export function countsFromPushgateway(answer: unknown, group: Record<string, string>, environment: string): DoraCounts | undefined {
  if (typeof answer !== 'object' || answer === null) return undefined;
  const data = (answer as { data?: unknown }).data;
  if (!Array.isArray(data)) return undefined;
  const counts: DoraCounts = { deployments: {}, failures: {} };
  for (const entry of data as Record<string, unknown>[]) {
    const labels = entry?.['labels'] as Record<string, string> | undefined;
    if (!labels || Object.keys(group).some((k) => labels[k] !== group[k]) || Object.keys(labels).length !== Object.keys(group).length) continue;
    read(entry[METRIC_NAMES.deployments], environment, counts.deployments);
    read(entry[METRIC_NAMES.failures], environment, counts.failures);
  }
  return counts;
}

/** Only the series of this environment continue: a target moved to another environment starts that one's count at 0. */
function read(family: unknown, environment: string, into: Partial<Record<OutcomeResult, number>>): void {
  const metrics = (family as { metrics?: unknown } | undefined)?.metrics;
  if (!Array.isArray(metrics)) return;
  for (const m of metrics as { labels?: Record<string, string>; value?: string }[]) {
    if (m.labels?.['environment'] !== environment) continue;
    const outcome = m.labels?.['outcome'] as OutcomeResult | undefined;
    const value = Number(m.value);
    if (outcome && OUTCOMES.includes(outcome) && Number.isFinite(value) && value >= 0) into[outcome] = value;
  }
}
