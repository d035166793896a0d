import { randomUUID } from 'node:crypto';
import { formatValue } from '../analysis/format-value.js';
import type { CheckRecord, CheckResult, Unit } from '../analysis/types.js';
import { buildIncident, dashboardLink, DRY_RUN_STABLE } from '../incident/incident.js';
import { formatDuration } from '../policy/units.js';
import type { Reporter, RolloutEvent } from '../rollout/events.js';
import type { IncidentResult } from '../rollout/ports.js';
import { countsOf, type Outcome, type RolloutRecord } from '../rollout/record.js';
import { appendRedacted, textSink, type TextSink } from '../redaction/sinks.js';
import { redact } from '../secrets.js';

// GitHub Actions: workflow commands in the log (a collapsible group per step, annotations for the
// rollback reason, advisory breaches and failed incident sinks), a job summary with tables and
// Mermaid charts, and step outputs a later step can branch on. It only renders what the engine
// reports; a file it cannot write is a warning, never a change to the rollout's result.

export interface GitHubReporterOptions {
  /** Where workflow commands go: stdout, or stderr when stdout carries `-o json`. */
  commands: NodeJS.WritableStream;
  /** GITHUB_STEP_SUMMARY */
  summaryPath?: string;
  /** GITHUB_OUTPUT */
  outputPath?: string;
  dashboardUrl?: string;
  /**
   * The rollout is a dry-run: nothing in the cluster changed, so a rollback is news, not an
   * outage. The summary and annotations say "Dry-run:", a rollback is a notice rather than an
   * error, and stable is "not verified (dry-run)" (the record itself has no dry-run flag).
   */
  dryRun?: boolean;
}

export interface GitHubReporterEnvOptions {
  dashboardUrl?: string;
  dryRun?: boolean;
}

/**
 * A reporter when running in GitHub Actions (GITHUB_ACTIONS=true), else null. The third argument
 * is the dashboard template, or the options (dashboard template and dry-run).
 */
export function githubReporterFromEnv(
  env: NodeJS.ProcessEnv,
  commands: NodeJS.WritableStream,
  options?: string | GitHubReporterEnvOptions,
): GitHubReporter | null {
  if (env['GITHUB_ACTIONS'] !== 'true') return null;
  const { dashboardUrl, dryRun } = typeof options === 'string' ? { dashboardUrl: options, dryRun: false } : (options ?? {});
  return new GitHubReporter({
    commands,
    ...(env['GITHUB_STEP_SUMMARY'] && { summaryPath: env['GITHUB_STEP_SUMMARY'] }),
    ...(env['GITHUB_OUTPUT'] && { outputPath: env['GITHUB_OUTPUT'] }),
    ...(dashboardUrl !== undefined && { dashboardUrl }),
    ...(dryRun && { dryRun: true }),
  });
}

/** Workflow command message escaping (as @actions/core does). */
export function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

export function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

const DRY_RUN_PREFIX = 'Dry-run: ';

const TITLES: Record<Outcome['result'], string> = {
  promoted: '✅ Canary promoted',
  'rolled-back': '❌ Canary rolled back',
  aborted: '⚠️ Canary aborted',
  failed: '❌ Canary failed',
  'rolled-back-after-promotion': '❌ Rolled back after promotion',
};

export class GitHubReporter implements Reporter {
  private groupOpen = false;
  private record: RolloutRecord | undefined;
  private outcome: Outcome | undefined;
  private readonly incidents: IncidentResult[] = [];
  private readonly warnedMetrics = new Set<string>();

  /** Workflow commands go to the log: only redacted text is written. */
  private readonly commands: TextSink;

  constructor(private readonly opts: GitHubReporterOptions) {
    this.commands = textSink(opts.commands);
  }

  private command(name: string, message: string, props: Record<string, string> = {}): void {
    const p = Object.entries(props)
      .map(([k, v]) => `${k}=${escapeProperty(redact(v))}`)
      .join(',');
    // Redacted before escaping too: "%0A" escapes would split a secret the log reader sees whole.
    this.commands.write(redact(`::${name}${p ? ` ${p}` : ''}::${escapeData(redact(message))}\n`));
  }

  private endGroup(): void {
    if (!this.groupOpen) return;
    this.commands.write(redact('::endgroup::\n'));
    this.groupOpen = false;
  }

  emit(event: RolloutEvent): void {
    switch (event.type) {
      case 'started':
        this.record = event.record;
        return;
      case 'step':
        this.endGroup();
        this.commands.write(redact(`::group::${escapeData(`Step ${event.stepIndex + 1}/${event.steps}: ${event.weight}% to canary for ${formatDuration(event.durationMs)}`)}\n`));
        this.groupOpen = true;
        return;
      case 'phase':
        if (event.phase === 'rolling-back' || event.phase === 'promoting') this.endGroup();
        return;
      case 'check':
        return this.advisory(event.check);
      case 'log':
        if (event.level === 'error') this.command('error', event.message);
        return;
      case 'incident':
        this.incidents.push(event.result);
        if (!event.result.ok) this.command('warning', event.result.message, { title: `Incident sink ${event.result.sink} failed` });
        return;
      case 'finished':
        this.endGroup();
        this.record = event.record;
        this.outcome = event.outcome;
        return this.annotateOutcome(event.outcome, event.record);
      case 'traffic':
        return;
    }
  }

  private advisory(check: CheckRecord): void {
    for (const r of check.results) {
      if (r.critical || r.verdict !== 'fail' || this.warnedMetrics.has(r.metric)) continue;
      // Once per metric: an advisory breach repeats every minute and would bury the log in annotations.
      this.warnedMetrics.add(r.metric);
      this.command('warning', `${r.metric}: ${r.reason} (check ${check.index} at ${check.weight}%; advisory, does not decide the rollout)`, {
        title: `Advisory check ${r.metric}`,
      });
    }
  }

  private annotateOutcome(outcome: Outcome, record: RolloutRecord): void {
    const dryRun = Boolean(this.opts.dryRun);
    const title = `${dryRun ? DRY_RUN_PREFIX : ''}${TITLES[outcome.result].replace(/^\S+ /, '')}: ${record.target}`;
    const message = `${outcome.reason} — traffic: ${outcome.traffic}`;
    // A dry-run's rollback is what the dry-run is for; only a failure of the run itself is an error.
    if (outcome.result === 'promoted' || (dryRun && outcome.result === 'rolled-back')) this.command('notice', message, { title });
    else if (outcome.result === 'aborted') this.command('warning', message, { title });
    else this.command('error', message, { title });
  }

  close(): void {
    this.endGroup();
    const { record, outcome } = this;
    if (!record || !outcome) return;
    if (this.opts.summaryPath) {
      const summaryOpts = { ...(this.opts.dashboardUrl !== undefined && { dashboardUrl: this.opts.dashboardUrl }), dryRun: Boolean(this.opts.dryRun) };
      this.write(this.opts.summaryPath, jobSummary(record, outcome, this.incidents, summaryOpts), 'job summary (GITHUB_STEP_SUMMARY)');
    }
    if (this.opts.outputPath) {
      const url = this.incidents.find((i) => i.ok && i.url)?.url ?? '';
      const outputs: [string, string][] = [
        ['result', outcome.result],
        ['rollout-id', record.id],
        ['final-weight', String(record.weight)],
        ['incident-url', url],
        ['exit-code', String(outcome.exitCode)],
      ];
      this.write(this.opts.outputPath, outputs.map(([k, v]) => outputLine(k, v)).join(''), 'step outputs (GITHUB_OUTPUT)');
    }
  }

  private write(path: string, text: string, what: string): void {
    try {
      // The summary quotes errors and incident results: no registered secret may reach the run page.
      appendRedacted(path, redact(text));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      this.command('warning', `could not write the ${what} to ${path} (${code})`);
    }
  }
}

/** One GITHUB_OUTPUT entry; multi-line values use the heredoc form GitHub documents. */
export function outputLine(name: string, value: string): string {
  if (!/[\r\n]/.test(value)) return `${name}=${value}\n`;
  const delimiter = `ghadelimiter_${randomUUID()}`;
  return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function minutesSince(startMs: number, at: string): number {
  return Math.round(((Date.parse(at) - startMs) / 60_000) * 10) / 10;
}

/** The first result of each critical metric in a check: the numbers a chart plots. */
function primaryResults(check: CheckRecord): CheckResult[] {
  const seen = new Set<string>();
  return check.results.filter((r) => {
    if (!r.critical || seen.has(r.metric)) return false;
    seen.add(r.metric);
    return true;
  });
}

const CHART_SCALE: Partial<Record<Unit, { factor: number; label: string }>> = {
  ratio: { factor: 100, label: '%' },
  seconds: { factor: 1000, label: 'ms' },
};

function num(value: number): string {
  return String(Number(value.toFixed(3)));
}

/** Mermaid xychart-beta blocks: canary vs stable for each critical metric, and the weight. */
/**
 * A sequential latency check judges shares of slow requests but carries each side's P95 as
 * evidence; the chart shows the P95s, which is what people compare.
 */
function chartUnit(r: CheckResult): Unit {
  return typeof r.evidence?.['canaryP'] === 'number' ? 'seconds' : r.unit;
}

function chartValue(r: CheckResult, side: 'canary' | 'stable', unit: Unit): number | null {
  const p = r.evidence?.[side === 'canary' ? 'canaryP' : 'stableP'];
  if (typeof p === 'number') return p;
  return r.unit === unit ? r[side] : null;
}

export function charts(record: RolloutRecord): string[] {
  const checks = record.checks;
  if (checks.length === 0) return [];
  const start = Date.parse(record.startedAt);
  const stride = Math.ceil(checks.length / 100);
  const shown = checks.filter((_, i) => i % stride === 0 || i === checks.length - 1);
  const xs = shown.map((c) => num(minutesSince(start, c.at)));
  const out: string[] = [];

  const metrics = new Map<string, Unit>();
  for (const c of checks) for (const r of primaryResults(c)) if (!metrics.has(r.metric)) metrics.set(r.metric, chartUnit(r));
  for (const [metric, unit] of metrics) {
    const scale = CHART_SCALE[unit] ?? { factor: 1, label: unit };
    let gaps = false;
    const series = (side: 'canary' | 'stable') =>
      shown.map((c) => {
        const result = c.results.find((r) => r.metric === metric);
        const v = result ? chartValue(result, side, unit) : null;
        if (v === null || v === undefined || !Number.isFinite(v)) {
          gaps = true;
          return '0';
        }
        return num(v * scale.factor);
      });
    const canary = series('canary');
    const stable = series('stable');
    out.push(
      [
        `**${metric}** (${scale.label}): first line canary, second line stable${gaps ? '; checks with no value are drawn at 0' : ''}`,
        '',
        '```mermaid',
        'xychart-beta',
        `  title "${metric}: canary vs stable (${scale.label})"`,
        `  x-axis "minutes since start" [${xs.join(', ')}]`,
        `  y-axis "${scale.label}"`,
        `  line [${canary.join(', ')}]`,
        `  line [${stable.join(', ')}]`,
        '```',
      ].join('\n'),
    );
  }

  const weights = [...shown.map((c) => String(c.weight)), String(record.weight)];
  out.push(
    [
      `**canary weight** (% of traffic) at each check, then at the end`,
      '',
      '```mermaid',
      'xychart-beta',
      '  title "canary weight (%)"',
      `  x-axis "minutes since start" [${[...xs, 'end'].join(', ')}]`,
      '  y-axis "%" 0 --> 100',
      `  bar [${weights.join(', ')}]`,
      '```',
    ].join('\n'),
  );
  return out;
}

function stepsTable(record: RolloutRecord, outcome: Outcome): string[] {
  const rows = record.steps.map((s, i) => {
    const c = countsOf(record).byStep(s.index);
    const last = i === record.steps.length - 1;
    const result = s.endedAt ? 'passed' : last ? outcome.result : '-';
    return `| ${s.index + 1} | ${s.weight}% | ${s.startedAt} | ${s.endedAt ?? '-'} | ${c.run} (${c.passed} pass, ${c.failed} fail, ${c.inconclusive} inconclusive, ${c.pending} pending) | ${result} |`;
  });
  return ['| Step | Weight | Started | Ended | Checks | Result |', '|---|---|---|---|---|---|', ...rows];
}

function checksTable(record: RolloutRecord): string[] {
  const start = Date.parse(record.startedAt);
  const metrics: string[] = [];
  for (const c of record.checks) for (const r of primaryResults(c)) if (!metrics.includes(r.metric)) metrics.push(r.metric);
  const head = `| # | Minute | Weight | Verdict | ${metrics.map((m) => `${m} (canary / stable)`).join(' | ')} | Why |`;
  const rule = `|---|---|---|---|${metrics.map(() => '---|').join('')}---|`;
  const rows = record.checks.map((c) => {
    const values = metrics.map((m) => {
      const r = c.results.find((x) => x.metric === m);
      if (!r) return '-';
      const unit = chartUnit(r);
      return `${formatValue(chartValue(r, 'canary', unit), unit)} / ${formatValue(chartValue(r, 'stable', unit), unit)}`;
    });
    const why = c.results
      .filter((r) => (r.critical && (r.verdict === 'fail' || r.verdict === 'inconclusive')) || (!r.critical && r.verdict === 'fail'))
      .map((r) => `${r.critical ? '' : 'advisory '}${r.metric}: ${r.reason}`);
    const mark = c.verdict === 'pass' ? '✅' : c.verdict === 'fail' ? '❌' : '❔';
    return `| ${c.index} | +${minutesSince(start, c.at)} | ${c.weight}% | ${mark} ${c.verdict} | ${values.join(' | ')} | ${cell(why.join('; ')) || ''} |`;
  });
  return [head, rule, ...rows];
}

function stableRow(record: RolloutRecord, dryRun: boolean): string[] {
  const rollback = record.rollback;
  if (!rollback) return [];
  if (dryRun) return [`| Stable after rollback | ${DRY_RUN_STABLE} |`];
  if (rollback.stableVerified === undefined) return [];
  const message = rollback.stableMessage ? ` (${cell(rollback.stableMessage)})` : '';
  return [`| Stable after rollback | ${rollback.stableVerified ? '✅ verified available' : '❌ NOT available'}${message} |`];
}

export interface JobSummaryOptions {
  dashboardUrl?: string;
  dryRun?: boolean;
}

/** The job summary markdown for a finished rollout. */
export function jobSummary(record: RolloutRecord, outcome: Outcome, incidents: readonly IncidentResult[], opts: JobSummaryOptions = {}): string {
  const { dashboardUrl } = opts;
  const dryRun = Boolean(opts.dryRun);
  const lines: string[] = [
    `## ${dryRun ? DRY_RUN_PREFIX : ''}${TITLES[outcome.result]}: \`${record.target}\` → \`${record.images.canary}\``,
    ...(dryRun ? ['', '_A dry-run: nothing in the cluster was changed._'] : []),
    '',
    `**${outcome.result === 'promoted' ? 'Result' : 'Reason'}:** ${cell(outcome.reason)}`,
    '',
    '| | |',
    '|---|---|',
    `| Target | \`${record.target}\` in namespace \`${record.namespace}\` |`,
    `| Images | stable \`${record.images.stable ?? 'unknown'}\` → canary \`${record.images.canary}\` |`,
    `| Traffic | ${cell(outcome.traffic)} (canary weight now ${record.weight}%) |`,
    ...stableRow(record, dryRun),
    `| Checks | ${countsOf(record).total.run} run of ${record.policy.plannedChecks} planned${countsOf(record).total.run > record.checks.length ? ` (the last ${record.checks.length} kept in full)` : ''} |`,
    `| Rollout | \`${record.id}\` · policy ${cell(record.policy.name)} (${cell(record.policy.source)}) · exit code ${outcome.exitCode} |`,
    `| Started by | ${cell(record.startedBy)} |`,
    ...(dashboardUrl ? [`| Dashboard | [open](${dashboardLink(dashboardUrl, record)}) |`] : []),
    '',
  ];

  if (outcome.result !== 'promoted') {
    const evidence = buildIncident(record, { dryRun }).failingChecks;
    if (evidence.length) {
      lines.push('### Evidence', '', '| Check | Metric | Comparison | Canary | Stable | Limit | Why |', '|---|---|---|---|---|---|---|');
      for (const f of evidence) {
        lines.push(
          `| ${f.check} (${f.weight}%) | ${cell(f.metric)} | ${cell(f.comparison)} | **${f.display.canary}** | ${f.display.stable} | ${f.display.threshold} | ${cell(f.reason)} |`,
        );
      }
      const queries = [...new Set(evidence.flatMap((f) => f.queries))];
      lines.push('', '<details><summary>PromQL behind the evidence</summary>', '', '```promql', ...queries, '```', '', '</details>', '');
    }
  }

  if (incidents.length) {
    lines.push('### Incidents', '', '| Sink | Result | Details |', '|---|---|---|');
    for (const i of incidents) {
      const details = i.url ? `[${cell(i.url)}](${i.url}) · ${cell(i.message)}` : cell(i.message);
      lines.push(`| ${cell(i.sink)} | ${i.ok ? '✅ delivered' : '⚠️ failed'} | ${details} |`);
    }
    lines.push('');
  }

  lines.push('### Steps', '', ...stepsTable(record, outcome), '');
  const chartBlocks = charts(record);
  if (chartBlocks.length) lines.push('### Canary vs stable', '', ...chartBlocks.flatMap((c) => [c, '']));
  if (record.checks.length) lines.push('### Checks', '', ...checksTable(record), '');
  return `${lines.join('\n')}\n`;
}
