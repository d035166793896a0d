import type { DoctorReport } from '../doctor/doctor.js';
import type { DoctorVerdict } from '../doctor/finding.js';

// One line per finding: verdict, area and check, what was found; the fix indented beneath it.

export interface DoctorStyle {
  ok: (s: string) => string;
  warn: (s: string) => string;
  fail: (s: string) => string;
  bold: (s: string) => string;
}

const plain: DoctorStyle = { ok: (s) => s, warn: (s) => s, fail: (s) => s, bold: (s) => s };
const LABEL: Record<DoctorVerdict, string> = { ok: 'OK  ', warn: 'WARN', fail: 'FAIL' };

export function renderDoctor(report: DoctorReport, style: DoctorStyle = plain, opts: { migration?: boolean } = {}): string {
  const lines = [style.bold(`canary doctor ${report.target} (namespace ${report.namespace}, router ${report.router})`)];
  for (const f of report.findings) {
    lines.push(`  ${style[f.verdict](LABEL[f.verdict])}  ${f.area}/${f.check}: ${f.detail}`);
    if (f.fix) lines.push(`        fix: ${f.fix}`);
  }
  const failed = report.findings.filter((f) => f.verdict === 'fail').length;
  const warned = report.findings.filter((f) => f.verdict === 'warn').length;
  lines.push(
    report.canWork
      ? style.ok(`a rollout can work${warned > 0 ? ` (${warned} warning${warned === 1 ? '' : 's'}: less certain where they say)` : ''}`)
      : style.fail(`a rollout cannot work as configured: ${failed} problem${failed === 1 ? '' : 's'} to fix first`),
  );
  if (opts.migration !== false && report.migration) {
    lines.push('', style.bold('moving to Gateway API: the HTTPRoute that carries the same split'));
    for (const note of report.migration.notes) lines.push(`  - ${note}`);
    lines.push('', report.migration.yaml.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}
