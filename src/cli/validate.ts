import { formatValue } from '../analysis/format-value.js';
import { loadPolicy } from '../policy/loader.js';
import { plannedChecks, type MetricSpec } from '../policy/policy.js';
import { formatDuration } from '../policy/units.js';
import { displayPolicy } from '../policy/display.js';
import { redact, redactedJson } from '../secrets.js';
import { parseOutput } from './parse-flags.js';

function describeMetric(m: MetricSpec): string {
  const limits: string[] = [];
  if (m.type === 'error-rate') {
    if (m.max !== undefined) limits.push(`≤ ${formatValue(m.max, 'ratio')}`);
    if (m.maxIncrease !== undefined) limits.push(`≤ stable + ${Number((m.maxIncrease * 100).toFixed(2))} points`);
  } else {
    const unit = m.type === 'latency' ? 'seconds' : (m.unit ?? 'count');
    if (m.max !== undefined) limits.push(`≤ ${formatValue(m.max, unit)}`);
    if (m.maxRatio !== undefined) limits.push(`≤ ${m.maxRatio}× stable`);
  }
  const kind = m.critical ? `critical, ${m.judge} judge` : 'advisory';
  return `${m.name} (${m.type}${m.type === 'latency' ? ` P${m.quantile * 100}` : ''}): ${limits.join(', ') || 'reported'} [${kind}]`;
}

/** `canary validate FILE`: exit 0 and a summary when valid; exit 2 with every problem otherwise. */
export function validateCommand(file: string, flags: { output?: string }): number {
  const format = parseOutput(flags.output);
  const policy = loadPolicy(file);
  if (format === 'json') {
    // Secrets shown as where they are read from, or "[REDACTED]"; then redacted as text too.
    process.stdout.write(redact(`${redactedJson({ valid: true, policy: displayPolicy(policy) }, 2)}\n`));
    return 0;
  }
  const a = policy.analysis;
  const lines = [
    `${file}: valid policy "${policy.name}"`,
    `  steps: ${policy.steps.map((s) => `${s.weight}% for ${formatDuration(s.durationMs)}`).join(' → ')} → promote`,
    `  checks: every ${formatDuration(policy.intervalMs)} over a ${formatDuration(a.windowMs)} window, ${plannedChecks(policy)} planned; preset ${a.preset}`,
    `  decisions: rollback after ${a.failureLimit} ${a.countFailures === 'consecutive' ? 'consecutive' : 'total'} failed check(s) or ${a.inconclusiveLimit} inconclusive in a row`,
    ...(a.metrics.some((m) => m.critical && m.judge === 'threshold')
      ? [`  threshold judges: fewer than ${a.minRequests} canary requests in a window is inconclusive`]
      : []),
    ...(a.metrics.some((m) => m.judge === 'sequential')
      ? [
          `  sequential judges: false rollbacks ≤ ${formatValue(a.sequential.alpha, 'ratio')} over the rollout, missed regressions at the margin ≤ ${formatValue(a.sequential.beta, 'ratio')}; a window without canary traffic is inconclusive`,
        ]
      : []),
    ...a.metrics.map((m) => `  - ${describeMetric(m)}`),
    ...(policy.postPromotion
      ? [
          `  after promotion: stable watched for ${formatDuration(policy.postPromotion.durationMs)} (every ${formatDuration(policy.postPromotion.intervalMs)}) against its ${formatDuration(policy.postPromotion.baselineMs)} before the rollout with the limits of ${policy.postPromotion.metrics.join(', ')}; set back to the previous image after ${policy.postPromotion.failureLimit} breaching check(s) in a row (exit 7); fewer than ${a.minRequests} requests in a window is inconclusive`,
        ]
      : []),
  ];
  process.stdout.write(redact(`${lines.join('\n')}\n`));
  return 0;
}
