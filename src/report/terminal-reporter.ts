import { Chalk, type ChalkInstance } from 'chalk';
import { describeFigures } from '../analysis/stable-watch.js';
import { abridgeQuery } from '../analysis/abridge.js';
import ora, { type Ora } from 'ora';
import type { CheckRecord, CheckResult } from '../analysis/types.js';
import { formatDuration } from '../policy/units.js';
import type { Reporter, RolloutEvent } from '../rollout/events.js';
import { textSink, type TextSink } from '../redaction/sinks.js';
import { redact } from '../secrets.js';
import { countsOf, type Outcome, type RolloutRecord } from '../rollout/record.js';
import { checkSummary, renderTable, resultRows } from './check-format.js';
import { colorEnabled } from './color.js';

// Kept in color.ts so `status` can colour its output without loading ora; re-exported for callers.
export { colorEnabled };

export interface TerminalOptions {
  out: NodeJS.WritableStream;
  /** Spinner and relative layout for people; plain timestamped lines for logs. */
  tty: boolean;
  /** Colour is decided separately: NO_COLOR / FORCE_COLOR win over the TTY guess. */
  color: boolean;
  /** Print every check's full table, not only the ones that did not pass. */
  verbose: boolean;
}

const VERDICT_MARK: Record<string, string> = { pass: '✓', fail: '✗', inconclusive: '?', pending: '…', info: '·' };

/** Human output: what the rollout is doing, and for every decision the numbers behind it. */
export class TerminalReporter implements Reporter {
  private readonly c: ChalkInstance;
  private spinner: Ora | undefined;
  private stepText = '';

  /** The terminal takes only redacted text. */
  private readonly out: TextSink;

  constructor(private readonly opts: TerminalOptions) {
    this.c = new Chalk({ level: opts.color ? 1 : 0 });
    this.out = textSink(opts.out);
  }

  private line(at: number, text: string): void {
    this.spinner?.clear();
    const prefix = this.opts.tty ? '' : `${new Date(at).toISOString()}  `;
    for (const part of redact(text).split('\n')) this.out.write(redact(`${prefix}${part}\n`));
    this.spinner?.render();
  }

  private paintVerdict = (verdict: string, text: string): string => {
    if (verdict.startsWith('fail')) return verdict.includes('advisory') ? this.c.yellow(text) : this.c.red.bold(text);
    if (verdict.startsWith('inconclusive') || verdict.startsWith('pending')) return this.c.yellow(text);
    if (verdict.startsWith('pass')) return this.c.green(text);
    return this.c.dim(text);
  };

  private table(results: readonly CheckResult[]): string {
    return renderTable(resultRows(results), this.paintVerdict)
      .map((row, i) => (i === 0 ? `    ${this.c.dim(row)}` : `    ${row}`))
      .join('\n');
  }

  emit(event: RolloutEvent): void {
    switch (event.type) {
      case 'started':
        return this.started(event.at, event.record);
      case 'phase':
        if (event.phase === 'promoting') this.line(event.at, this.c.bold(`⇡ ${event.message}`));
        else if (event.phase === 'watching') this.line(event.at, this.c.bold(`◉ ${event.message}`));
        return;
      case 'step':
        this.stepText = `step ${event.stepIndex + 1}/${event.steps}: ${event.weight}% to canary for ${formatDuration(event.durationMs)}`;
        this.line(event.at, this.c.bold.cyan(`▶ ${this.stepText}`));
        this.spin(this.stepText);
        return;
      case 'check':
        return this.check(event.at, event.check, event.stepChecks);
      case 'traffic':
        return;
      case 'log': {
        const paint = event.level === 'error' ? this.c.red : event.level === 'warn' ? this.c.yellow : this.c.dim;
        this.line(event.at, paint(`${event.level === 'info' ? ' ' : '!'} ${event.message}`));
        return;
      }
      case 'incident':
        this.line(
          event.at,
          event.result.ok
            ? `  incident opened in ${event.result.sink}${event.result.url ? `: ${event.result.url}` : ''}`
            : this.c.yellow(`! incident sink ${event.result.sink} failed: ${event.result.message}`),
        );
        return;
      case 'finished':
        return this.finished(event.at, event.outcome, event.record);
    }
  }

  private spin(text: string): void {
    if (!this.opts.tty) return;
    this.spinner?.stop();
    this.spinner = ora({ text: redact(text), stream: this.opts.out, color: 'cyan', isEnabled: true }).start();
  }

  private started(at: number, record: RolloutRecord): void {
    this.line(
      at,
      this.c.bold(`canary ${record.target} (namespace ${record.namespace}) → ${record.images.canary}`) +
        `\n  stable image: ${record.images.stable ?? 'unknown'} · policy: ${record.policy.name} (${record.policy.source}), ${record.policy.plannedChecks} checks planned · rollout ${record.id}`,
    );
  }

  private check(at: number, check: CheckRecord, progress: { done: number; planned: number }): void {
    const mark = VERDICT_MARK[check.verdict] ?? '?';
    const paint = check.verdict === 'pass' ? this.c.green : check.verdict === 'fail' ? this.c.red.bold : this.c.yellow;
    const advisory = check.results.filter((r) => !r.critical && r.verdict === 'fail');
    const head = `${paint(`${mark} check ${check.index}`)} ${this.c.dim(`[${check.weight}% · ${progress.done}/${progress.planned}]`)} ${checkSummary(check)}`;
    // A pending check is the normal state of a sequential judge gathering evidence: say why in a
    // line, keep the table for checks that failed, lack data, or breach an advisory limit.
    const table = this.opts.verbose || check.verdict === 'fail' || check.verdict === 'inconclusive' || advisory.length > 0;
    const why = check.results
      .filter((r) => (r.critical && r.verdict !== 'pass' && r.verdict !== 'info') || (!r.critical && r.verdict === 'fail'))
      .map((r) => `    ${paint(r.verdict === 'fail' && !r.critical ? 'advisory' : r.verdict)}: ${r.metric}: ${r.reason}`);
    const warned = (check.warnings ?? []).map((w) => this.c.yellow(`    ! Prometheus warned: ${w}`));
    this.line(at, [head, ...(table ? [this.table(check.results)] : []), ...why, ...warned].join('\n'));
    if (this.spinner) this.spinner.text = `${this.stepText} · check ${progress.done}/${progress.planned}`;
  }

  private finished(at: number, outcome: Outcome, record: RolloutRecord): void {
    this.spinner?.stop();
    this.spinner = undefined;
    const paint = outcome.result === 'promoted' ? this.c.green.bold : outcome.result === 'aborted' ? this.c.yellow.bold : this.c.red.bold;
    const title = { promoted: 'PROMOTED', 'rolled-back': 'ROLLED BACK', aborted: 'ABORTED', failed: 'FAILED', 'rolled-back-after-promotion': 'ROLLED BACK AFTER PROMOTION' }[outcome.result];
    const counts = countsOf(record).total;
    const lines = [
      paint(`${title}: ${outcome.reason}`),
      `  traffic: ${outcome.traffic}`,
      ...(record.rollback?.stableVerified !== undefined
        ? [`  stable: ${record.rollback.stableVerified ? 'verified available' : this.c.red('NOT available')} (${record.rollback.stableMessage ?? ''})`]
        : record.rollback?.stableMessage
          ? [`  stable: ${record.rollback.stableMessage}`]
          : []),
      `  checks: ${counts.run} run (${counts.passed} passed, ${counts.failed} failed, ${counts.inconclusive} inconclusive, ${counts.pending} pending) · exit ${outcome.exitCode}`,
    ];
    const watch = record.watch;
    if (watch?.latest) {
      const base = record.baseline ? ` vs ${describeFigures(record.baseline)} before the rollout` : '';
      lines.push(`  post-promotion watch: ${watch.checks} checks (${watch.passed} passed, ${watch.failed} breached, ${watch.inconclusive} inconclusive); latest at ${watch.latest.at}: stable ${describeFigures(watch.latest.figures)}${base}`);
    }
    const last = record.checks[record.checks.length - 1];
    // After promotion the canary's last check is not what decided: the watch's line above is.
    if (outcome.result !== 'promoted' && outcome.result !== 'rolled-back-after-promotion' && last && last.verdict !== 'pass') {
      const deciding = last.results.filter((r) => r.critical && r.verdict === last.verdict);
      lines.push(`  evidence (check ${last.index} at ${last.at}, ${last.weight}%):`);
      for (const metric of new Set(deciding.map((r) => r.metric))) {
        const mine = deciding.filter((r) => r.metric === metric);
        for (const r of mine) lines.push(`    ${metric}: ${r.reason}`);
        for (const q of new Set(mine.flatMap((r) => r.queries).filter(Boolean))) lines.push(this.c.dim(`      ${this.opts.verbose ? q : abridgeQuery(q)}`));
      }
    }
    this.line(at, lines.join('\n'));
  }

  close(): void {
    this.spinner?.stop();
  }
}
