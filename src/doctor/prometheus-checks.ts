// What Prometheus must hold for the policy's checks to mean something, asked read-only at one
// moment: every query answers for stable, a window holds at least two samples, status labels are
// what the queries match, the clocks agree, and the latency thresholds fall where the buckets can
// resolve them.

import { CheckContext } from '../analysis/check-context.js';
import type { QueryTarget } from '../analysis/promql-template.js';
import type { MetricsSource } from '../analysis/types.js';
import { measureClockSkew, skewProblem } from '../cli/clock-skew.js';
import { CanaryError } from '../errors.js';
import type { MetricSpec, Policy } from '../policy/policy.js';
import { formatDuration, promDuration } from '../policy/units.js';
import { bracket, resolutionAt, seconds } from './bucket-resolution.js';
import { fail, ok, warn, type Finding } from './finding.js';

export interface PrometheusDoctorInput {
  policy: Policy;
  target: QueryTarget;
  source: MetricsSource;
  /** The moment asked about: now minus the policy's evaluation delay, as a check would. */
  at: Date;
  /** Prometheus's clock (`time()`), for the skew check; absent for a recording. */
  serverTime?: () => Promise<number>;
  displayUrl: string;
}

/** The query names (or templates) each metric reads, as the judges use them. */
export function queriesOf(metric: MetricSpec): string[] {
  if (metric.type === 'error-rate') return ['requests', 'errors'];
  if (metric.type === 'latency') return metric.judge === 'sequential' ? ['latencyBuckets'] : ['latency'];
  return [metric.query];
}

// The first series selector of a template, `name{matchers}`: what the query reads underneath
// its functions. Derived from the policy's own template, so custom queries are checked too.
const SELECTOR = /([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[^{}]|\{\{[^}]*\}\})*)\}/;

export function seriesOf(template: string): string | undefined {
  return template.match(SELECTOR)?.[0];
}

/** The label a template matches 5xx on (`status` for ingress-nginx, `status_code` for prom-client). */
export function statusLabelOf(template: string): string | undefined {
  return template.match(/([a-zA-Z_][a-zA-Z0-9_]*)=~?"5/)?.[1];
}

/** A matcher on an exact code (status="503", status=~"50[0-4]") matches nothing when the label holds classes. */
function exactCodeMatchers(policy: Policy, label: string): string[] {
  const pattern = new RegExp(`${label}=~?"[1-5][0-9]`);
  return Object.entries(policy.analysis.queries).filter(([, t]) => pattern.test(t)).map(([name]) => name);
}

function abridged(promql: string): string {
  return promql.length > 160 ? `${promql.slice(0, 157)}…` : promql;
}

async function guarded(check: string, run: () => Promise<Finding[]>): Promise<Finding[]> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof CanaryError)) throw err;
    return [fail('prometheus', check, `Prometheus could not answer: ${err.message}`, 'fix the query or the Prometheus settings (spec.prometheus) and run doctor again')];
  }
}

export async function prometheusFindings(input: PrometheusDoctorInput): Promise<Finding[]> {
  const { policy } = input;
  const ctx = new CheckContext(policy, input.target, input.source, input.at, 0, 0);
  const windowText = formatDuration(policy.analysis.windowMs);
  const findings: Finding[] = [];

  // 1. Every query the policy's metrics read answers for stable (which serves before any canary).
  // An advisory metric without data only loses its report; a critical one leaves nothing to judge.
  const critical = new Set(policy.analysis.metrics.filter((m) => m.critical).flatMap(queriesOf));
  const names = [...new Set(policy.analysis.metrics.flatMap(queriesOf))];
  for (const name of names) {
    findings.push(
      ...(await guarded(`query:${name}`, async () => {
        const promql = ctx.render(name, 'stable', { quantile: 0.95 });
        const result = await ctx.result(promql);
        if (result.samples.length === 0) {
          const detail = `the ${name} query returns nothing for stable at ${input.at.toISOString()}: ${abridged(promql)}`;
          const fix = 'check the namespace, the target names and the preset (spec.analysis.preset) against what Prometheus holds for stable';
          return [critical.has(name) ? fail('prometheus', `query:${name}`, detail, fix) : warn('prometheus', `query:${name}`, `${detail} (an advisory metric: reported as missing, never decisive)`, fix)];
        }
        return [ok('prometheus', `query:${name}`, `the ${name} query answers for stable (${result.samples.length} series)`)];
      })),
    );
  }

  // 2. A window is counted from the sample before it to the last in it: it needs two samples.
  const requests = seriesOf(ctx.template('requests'));
  if (requests !== undefined) {
    findings.push(
      ...(await guarded('scrape-interval', async () => {
        const series = ctx.render(requests, 'stable');
        // Averaged over ten windows: one window's count depends on where its edges fall.
        const span = await ctx.result(`max(count_over_time(${series}[${promDuration(policy.analysis.windowMs * 10)}]))`);
        const total = span.samples[0]?.value;
        if (total === undefined || !Number.isFinite(total)) return [];
        const samples = Math.round(total - 1) / 10;
        if (samples < 2) {
          return [fail('prometheus', 'scrape-interval', `Prometheus holds about ${samples} sample${samples === 1 ? '' : 's'} of ${requests.split('{')[0]} per ${windowText} window: the target is scraped less often than every ${formatDuration(policy.analysis.windowMs / 2)}, so a window cannot be told from the next`, `scrape the controller at least twice per window (scrape_interval ≤ ${formatDuration(policy.analysis.windowMs / 2)}), or lengthen spec.analysis.window`)];
        }
        return [ok('prometheus', 'scrape-interval', `about ${samples} samples per ${windowText} window`)];
      })),
    );
  }

  // 3. --report-status-classes (ingress-nginx) turns "503" into "5xx".
  // Envoy's envoy_response_code_class is a class by design ("5"); only code labels can turn into classes.
  const label = statusLabelOf(ctx.template('errors'));
  if (requests !== undefined && label !== undefined && CODE_LABELS.includes(label)) {
    findings.push(
      ...(await guarded('status-labels', async () => {
        const series = ctx.render(requests, 'stable');
        const classes = await ctx.result(`count(${series.replace(/\}$/, `,${label}=~"[1-5]xx"}`)})`);
        if ((classes.samples[0]?.value ?? 0) === 0) return [ok('prometheus', 'status-labels', `${label} holds response codes`)];
        const exact = exactCodeMatchers(policy, label);
        if (exact.length > 0) {
          return [fail('prometheus', 'status-labels', `${label} holds classes like 5xx (ingress-nginx --report-status-classes), and the ${exact.join(', ')} quer${exact.length === 1 ? 'y matches' : 'ies match'} exact codes, which never appear`, `match classes in those queries (${label}=~"5.."), or run the controller without --report-status-classes`)];
        }
        return [ok('prometheus', 'status-labels', `${label} holds classes like 5xx (--report-status-classes); the errors query's ${label}=~"5.." matches them`)];
      })),
    );
  }

  // 4. Clocks: a runner ahead of Prometheus asks about windows it has not filled yet.
  if (input.serverTime) {
    const serverTime = input.serverTime;
    findings.push(
      ...(await guarded('clock', async () => {
        const skew = await measureClockSkew(serverTime);
        const problem = skewProblem(skew, policy.analysis.windowMs, input.displayUrl);
        return [problem ? fail('prometheus', 'clock', problem, 'fix this machine\'s clock (NTP)') : ok('prometheus', 'clock', `this machine's clock is within ${Math.round(Math.abs(skew.skewMs))} ms of Prometheus's`)];
      })),
    );
  }

  // 5. Latency thresholds against the histogram's buckets.
  const latency = policy.analysis.metrics.filter((m): m is Extract<MetricSpec, { type: 'latency' }> => m.type === 'latency');
  const bucketSeries = seriesOf(ctx.template('latencyBuckets'));
  if (latency.length > 0 && bucketSeries !== undefined) {
    findings.push(...(await guarded('buckets', () => bucketFindings(ctx, latency, bucketSeries))));
  }
  return findings;
}

const FINE_BUCKET = 1.25;
const CODE_LABELS = ['status', 'status_code', 'code'];
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

async function bucketFindings(ctx: CheckContext, metrics: Extract<MetricSpec, { type: 'latency' }>[], bucketSeries: string): Promise<Finding[]> {
  const les = await ctx.result(`count by (le) (${ctx.render(bucketSeries, 'stable')})`);
  // Bucket bounds in seconds, as the judges read them (Envoy's are milliseconds).
  const perSecond = ctx.policy.analysis.latencyBucketsPerSecond ?? 1;
  const bounds = les.samples.map((s) => Number(s.labels['le']) / perSecond).filter((b) => !Number.isNaN(b));
  if (bounds.length === 0) return [];
  const metricName = bucketSeries.split('{')[0] ?? bucketSeries;
  const findings: Finding[] = [];
  // A cap is judged exactly only on a boundary. A line that moves with stable (maxRatio × its P95)
  // is never exactly on one; it is resolved well enough when its bucket is narrow (≤ 1.25×).
  const judge = (metric: string, what: string, threshold: number, moving = false) => {
    const r = resolutionAt(threshold, bounds);
    if (moving && !r.exact && r.below !== undefined && r.above !== undefined && r.above / r.below <= FINE_BUCKET) {
      findings.push(ok('prometheus', `buckets:${metric}`, `${what} (${seconds(threshold)}) lies ${bracket(r)} of ${metricName}, a bucket narrow enough to resolve it`));
      return;
    }
    if (r.exact) {
      findings.push(ok('prometheus', `buckets:${metric}`, `${what} (${seconds(threshold)}) is a bucket boundary of ${metricName}: judged exactly`));
      return;
    }
    findings.push(
      warn(
        'prometheus',
        `buckets:${metric}`,
        `${what} (${seconds(threshold)}) lies ${bracket(r)} of ${metricName}: the share of requests above it is only known to be between the shares above those edges, so a canary near it cannot be judged exactly and its checks may stay pending`,
        moving
          ? `add buckets around ${seconds(threshold)} no more than 1.25× apart (e.g. le=${round3(threshold * 0.9)} and le=${round3(threshold * 1.1)}; ingress-nginx: --time-buckets)`
          : `add a bucket at le=${threshold} (ingress-nginx: --time-buckets; a client library: the histogram's buckets)`,
      ),
    );
  };
  for (const m of metrics) {
    if (m.max !== undefined) judge(m.name, `the ${m.name} cap`, m.max);
    if (m.maxRatio !== undefined && ctx.policy.analysis.queries['latency'] !== undefined) {
      const p = await ctx.value(ctx.render('latency', 'stable', { quantile: m.quantile }));
      if (p.ok && Number.isFinite(p.value) && p.value > 0) judge(`${m.name}:ratio`, `${m.maxRatio}× stable's P${Math.round(m.quantile * 100)} of ${seconds(p.value)} now`, p.value * m.maxRatio, true);
    }
  }
  return findings;
}
