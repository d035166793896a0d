import { describeFigures } from '../analysis/stable-watch.js';
import { formatDuration } from '../policy/units.js';
import type { RolloutRecord } from '../rollout/record.js';

// `status` of a promotion under its post-promotion watch (spec.postPromotion): time left, the
// latest figures against the baseline, and how it ended.

export interface WatchView {
  /** watching, or how the watch ended. */
  state: 'watching' | NonNullable<NonNullable<RolloutRecord['watch']>['result']>;
  endsAt: string;
  /** "12m left", or "ended". */
  left: string;
  checks: { run: number; passed: number; failed: number; inconclusive: number; breachesInRow: number; failureLimit: number };
  previousImage: string | null;
  latest: string | null;
  baseline: string | null;
  rolledBackBy: string | null;
}

export function watchView(record: RolloutRecord, now: number): WatchView | null {
  const w = record.watch;
  if (!w) return null;
  const leftMs = Date.parse(w.endsAt) - now;
  const state = w.result ?? 'watching';
  return {
    state,
    endsAt: w.endsAt,
    left: state === 'watching' ? (leftMs > 0 ? `${formatDuration(Math.ceil(leftMs / 1000) * 1000)} left` : 'ending') : 'ended',
    checks: { run: w.checks, passed: w.passed, failed: w.failed, inconclusive: w.inconclusive, breachesInRow: w.breachesInRow, failureLimit: w.failureLimit },
    previousImage: w.previousImage,
    latest: w.latest ? `${w.latest.verdict.toUpperCase()} at ${w.latest.at}: stable ${describeFigures(w.latest.figures)}${w.latest.results.filter((r) => r.verdict !== 'pass').map((r) => `; ${r.metric}: ${r.reason}`).join('')}` : null,
    baseline: record.baseline ? `stable over the ${formatDuration(record.baseline.windowMs)} before the rollout: ${describeFigures(record.baseline)}` : null,
    rolledBackBy: w.rolledBackBy ?? null,
  };
}

const STATE_WORDS: Record<WatchView['state'], string> = {
  watching: 'watching stable after promotion',
  passed: 'passed',
  inconclusive: 'inconclusive throughout (too little traffic to judge): the promotion stands unproven',
  'rolled-back': 'breached: stable set back by the watch',
  'rolled-back-by-operator': 'stable set back on request',
  'ended-early': 'ended early',
};

export function renderWatch(v: WatchView): string[] {
  const c = v.checks;
  return [
    `  watch:   ${STATE_WORDS[v.state]}${v.rolledBackBy && v.state !== 'passed' ? ` (by ${v.rolledBackBy})` : ''}, ${v.left} (ends ${v.endsAt}); ${c.run} checks: ${c.passed} passed, ${c.failed} breached, ${c.inconclusive} inconclusive; ${c.breachesInRow} breach${c.breachesInRow === 1 ? '' : 'es'} in a row of ${c.failureLimit} that set stable back to ${v.previousImage ?? 'the previous image'}`,
    ...(v.latest ? [`           latest: ${v.latest}`] : []),
    ...(v.baseline ? [`           baseline: ${v.baseline}`] : []),
  ];
}

/** What comes next while the watch runs. */
export function watchNext(record: RolloutRecord, view: WatchView): string {
  return `stable runs ${record.images.stable ?? record.images.canary} with all traffic; the watch ends at ${view.endsAt} (${view.left}) and then the promotion is final; on ${view.checks.failureLimit} breaching check${view.checks.failureLimit === 1 ? '' : 's'} in a row stable is set back to ${view.previousImage ?? 'the previous image'}; \`canary rollback ${record.target} -n ${record.namespace} --reason '...'\` sets it back now`;
}
