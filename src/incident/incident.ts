import { formatValue } from '../analysis/format-value.js';
import type { CheckRecord, CheckResult, Unit } from '../analysis/types.js';
import { checkSummary } from '../report/check-format.js';
import type { OutcomeResult, RolloutRecord } from '../rollout/record.js';

// What every sink tells the people on call, built once from the rollout record so Slack, PagerDuty,
// GitHub and webhooks all carry the same evidence. The webhook sends this object as it is, so its
// shape is part of the documented contract (INCIDENT_VERSION).

export const INCIDENT_VERSION = 1;

/** Marks an issue body as belonging to one rollout, so a second delivery comments instead. */
export const rolloutMarker = (rolloutId: string) => `<!-- canary-rollout-id: ${rolloutId} -->`;

export interface FailingCheck {
  /** The check's 1-based number within the rollout. */
  check: number;
  at: string;
  weight: number;
  metric: string;
  /** The comparison, e.g. "error rate ≤ 5%". */
  comparison: string;
  verdict: 'fail' | 'inconclusive';
  unit: Unit;
  canary: number | null;
  stable: number | null;
  threshold: number | null;
  /** The three values as an operator reads them: "12%", "0.51%", "5%". */
  display: { canary: string; stable: string; threshold: string };
  reason: string;
  queries: string[];
}

export interface TimelineEntry {
  at: string;
  text: string;
}

export interface Incident {
  version: typeof INCIDENT_VERSION;
  rolloutId: string;
  /** True when the rollout was a dry-run: nothing in the cluster changed. */
  dryRun: boolean;
  title: string;
  /** One line: what happened and why. */
  summary: string;
  result: OutcomeResult;
  reason: string;
  exitCode: number | null;
  target: string;
  namespace: string;
  images: { stable: string | null; canary: string };
  /** Where the rollout was when it stopped: 1-based step of `steps` planned, its weight, the last check. */
  failedAt: { step: number | null; steps: number | null; weight: number; check: number | null };
  failingChecks: FailingCheck[];
  timeline: TimelineEntry[];
  rollback: { traffic: string; stableVerified: boolean | null; stableMessage: string | null; requestedBy: string | null };
  startedBy: string;
  /** The GitHub Actions run (or any URL) that started the rollout, when startedBy is one. */
  runUrl: string | null;
  startedAt: string;
  endedAt: string;
  dashboardUrl: string | null;
  policy: { name: string; source: string };
}

export interface IncidentOptions {
  dashboardUrl?: string;
  dryRun?: boolean;
}

const RESULT_WORDS: Record<OutcomeResult, string> = {
  promoted: 'promoted',
  'rolled-back': 'rolled back',
  aborted: 'aborted',
  failed: 'failed',
  'rolled-back-after-promotion': 'rolled back after promotion',
};

/** Fills a dashboard template's {{placeholders}}; unknown ones are left for the loader to reject. */
export function dashboardLink(template: string, record: RolloutRecord): string {
  const start = Date.parse(record.startedAt);
  const end = Date.parse(record.outcome?.at ?? record.updatedAt);
  // A little margin either side so the graph shows the baseline and the recovery.
  const values: Record<string, string> = {
    target: record.target,
    namespace: record.namespace,
    rolloutId: record.id,
    image: record.images.canary,
    from: String(start - 5 * 60_000),
    to: String(end + 5 * 60_000),
    startedAt: record.startedAt,
    endedAt: record.outcome?.at ?? record.updatedAt,
  };
  return template.replace(/\{\{\s*([^}\s]*)\s*\}\}/g, (whole, name: string) =>
    values[name] === undefined ? whole : encodeURIComponent(values[name] ?? ''),
  );
}

/** The checks that decided: every failed check (the last five), or the final inconclusive one. */
function decidingChecks(record: RolloutRecord): CheckRecord[] {
  const failed = record.checks.filter((c) => c.verdict === 'fail');
  const last = record.checks[record.checks.length - 1];
  const picked = failed.slice(-5);
  if (last && last.verdict === 'inconclusive' && !picked.includes(last)) picked.push(last);
  return picked;
}

function failing(check: CheckRecord, r: CheckResult): FailingCheck {
  return {
    check: check.index,
    at: check.at,
    weight: check.weight,
    metric: r.metric,
    comparison: r.check,
    verdict: r.verdict === 'fail' ? 'fail' : 'inconclusive',
    unit: r.unit,
    canary: r.canary,
    stable: r.stable,
    threshold: r.threshold,
    display: {
      canary: formatValue(r.canary, r.unit),
      stable: formatValue(r.stable, r.unit),
      threshold: r.threshold === null ? '-' : formatValue(r.threshold, r.unit),
    },
    reason: r.reason,
    queries: [...new Set(r.queries.filter(Boolean))],
  };
}

function timeline(record: RolloutRecord, dryRun: boolean): TimelineEntry[] {
  const entries: TimelineEntry[] = [
    { at: record.startedAt, text: `rollout started by ${record.startedBy}: ${record.images.canary} against stable ${record.images.stable ?? 'unknown'}` },
  ];
  // Steps and checks in the order they happened: a step's checks follow the step.
  for (const step of record.steps) {
    entries.push({ at: step.startedAt, text: `step ${step.index + 1}: ${step.weight}% of traffic to the canary` });
    for (const check of record.checks.filter((c) => c.stepIndex === step.index)) {
      entries.push({ at: check.at, text: `check ${check.index} at ${check.weight}%: ${check.verdict} · ${checkSummary(check)}` });
    }
  }
  if (record.rollback) {
    const by = record.rollback.requestedBy === record.startedBy ? '' : ` (requested by ${record.rollback.requestedBy})`;
    entries.push({ at: record.rollback.at, text: `rollback${by}: ${record.rollback.reason}` });
  }
  if (record.outcome) {
    entries.push({ at: record.outcome.at, text: `${RESULT_WORDS[record.outcome.result]}: ${record.outcome.traffic}` });
    if (dryRun && record.rollback) {
      entries.push({ at: record.outcome.at, text: `stable ${DRY_RUN_STABLE}` });
    } else if (record.rollback?.stableVerified !== undefined) {
      entries.push({
        at: record.outcome.at,
        text: record.rollback.stableVerified
          ? `stable verified available (${record.rollback.stableMessage ?? ''})`
          : `stable NOT available after rollback (${record.rollback.stableMessage ?? ''})`,
      });
    }
  }
  return entries;
}

export function buildIncident(record: RolloutRecord, opts: IncidentOptions = {}): Incident {
  const result: OutcomeResult = record.outcome?.result ?? (record.phase === 'rolled-back' ? 'rolled-back' : 'aborted');
  const reason = record.outcome?.reason ?? record.rollback?.reason ?? 'no reason recorded';
  const checks = decidingChecks(record);
  const failingChecks = checks.flatMap((c) =>
    c.results.filter((r) => r.critical && (r.verdict === 'fail' || (c.verdict === 'inconclusive' && r.verdict === 'inconclusive'))).map((r) => failing(c, r)),
  );
  const lastCheck = record.checks[record.checks.length - 1];
  const lastStep = record.steps[record.steps.length - 1];
  // The weight of the step it stopped in: a step can start (and fail to reach its weight, or be
  // cancelled) before its first check, when the last check still shows the previous step's weight.
  const weight = lastStep?.weight ?? lastCheck?.weight ?? 0;
  const step = lastStep ? lastStep.index + 1 : null;
  // Records written before the plan was stored have no steps list.
  const steps = record.policy.steps?.length ?? null;
  const prefix = opts.dryRun ? '[dry-run] ' : '';
  const where = step === null ? 'before the first step' : `at step ${step}${steps ? ` of ${steps}` : ''} (${weight}%)`;
  const title = `${prefix}Canary ${RESULT_WORDS[result]}: ${record.target} in ${record.namespace} (${record.images.canary})`;
  return {
    version: INCIDENT_VERSION,
    rolloutId: record.id,
    dryRun: Boolean(opts.dryRun),
    title,
    summary: `${prefix}canary ${record.target} (${record.namespace}) ${RESULT_WORDS[result]} ${where}: ${reason}`,
    result,
    reason,
    exitCode: record.outcome?.exitCode ?? null,
    target: record.target,
    namespace: record.namespace,
    images: { ...record.images },
    failedAt: { step, steps, weight, check: lastCheck?.index ?? null },
    failingChecks,
    timeline: timeline(record, Boolean(opts.dryRun)),
    rollback: {
      traffic: record.outcome?.traffic ?? 'unknown',
      // A dry-run only assumes stable is available; it never looked.
      stableVerified: opts.dryRun ? null : (record.rollback?.stableVerified ?? null),
      stableMessage: record.rollback?.stableMessage ?? null,
      requestedBy: record.rollback?.requestedBy ?? null,
    },
    startedBy: record.startedBy,
    runUrl: /^https?:\/\//.test(record.startedBy) ? record.startedBy : null,
    startedAt: record.startedAt,
    endedAt: record.outcome?.at ?? record.updatedAt,
    dashboardUrl: opts.dashboardUrl ? dashboardLink(opts.dashboardUrl, record) : null,
    policy: { name: record.policy.name, source: record.policy.source },
  };
}

/** How a dry-run reports stable after its rollback: it touched no cluster, so it checked nothing. */
export const DRY_RUN_STABLE = 'not verified (dry-run)';

export function stableLine(incident: Incident): string {
  const { stableVerified, stableMessage } = incident.rollback;
  if (incident.dryRun) return DRY_RUN_STABLE;
  if (stableVerified === null) return 'not verified';
  return `${stableVerified ? 'verified available' : 'NOT available'}${stableMessage ? ` (${stableMessage})` : ''}`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Markdown for a GitHub issue or comment; `marker` hides the rollout id for deduplication. */
export function incidentMarkdown(incident: Incident): string {
  const lines: string[] = [
    rolloutMarker(incident.rolloutId),
    `**${incident.summary}**`,
    '',
    '| | |',
    '|---|---|',
    `| Target | \`${incident.target}\` in namespace \`${incident.namespace}\` |`,
    `| Images | stable \`${incident.images.stable ?? 'unknown'}\` → canary \`${incident.images.canary}\` |`,
    `| Stopped | ${incident.failedAt.step === null ? 'before the first step' : `step ${incident.failedAt.step} at ${incident.failedAt.weight}%`}${incident.failedAt.check === null ? '' : `, check ${incident.failedAt.check}`} |`,
    `| Traffic | ${cell(incident.rollback.traffic)} |`,
    `| Stable after rollback | ${cell(stableLine(incident))} |`,
    `| Started by | ${incident.runUrl ? `[${incident.runUrl}](${incident.runUrl})` : cell(incident.startedBy)} |`,
    `| Rollout | \`${incident.rolloutId}\` (policy ${cell(incident.policy.name)}, ${cell(incident.policy.source)}) |`,
    ...(incident.dashboardUrl ? [`| Dashboard | [open](${incident.dashboardUrl}) |`] : []),
    ...(incident.dryRun ? ['| Dry-run | yes: nothing in the cluster was changed |'] : []),
    '',
  ];
  if (incident.failingChecks.length) {
    lines.push('### Failing checks', '', '| Check | Metric | Comparison | Canary | Stable | Limit | Verdict |', '|---|---|---|---|---|---|---|');
    for (const f of incident.failingChecks) {
      lines.push(
        `| ${f.check} (${f.weight}%, ${f.at}) | ${cell(f.metric)} | ${cell(f.comparison)} | ${f.display.canary} | ${f.display.stable} | ${f.display.threshold} | ${f.verdict} |`,
      );
    }
    lines.push('');
    for (const f of incident.failingChecks) {
      lines.push(`- check ${f.check}, ${f.metric}: ${f.reason}`);
      lines.push('  ```promql');
      for (const q of f.queries) lines.push(`  ${q}`);
      lines.push('  ```');
    }
    lines.push('');
  }
  lines.push('<details><summary>Timeline</summary>', '', ...incident.timeline.map((t) => `- \`${t.at}\` ${t.text}`), '', '</details>', '');
  return lines.join('\n');
}

/** Plain text, for logs and chat fallbacks. */
export function incidentText(incident: Incident): string {
  const lines = [
    incident.summary,
    `target: ${incident.target} (namespace ${incident.namespace})`,
    `images: stable ${incident.images.stable ?? 'unknown'} → canary ${incident.images.canary}`,
    `traffic: ${incident.rollback.traffic}`,
    `stable: ${stableLine(incident)}`,
    ...incident.failingChecks.map(
      (f) => `check ${f.check} ${f.metric} (${f.comparison}): canary ${f.display.canary}, stable ${f.display.stable}, limit ${f.display.threshold}`,
    ),
    `started by: ${incident.startedBy}`,
    ...(incident.dashboardUrl ? [`dashboard: ${incident.dashboardUrl}`] : []),
  ];
  return lines.join('\n');
}
