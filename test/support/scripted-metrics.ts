import type { MetricsSource, QueryResult } from '../../src/analysis/types.js';

/** What one side shows over the analysis window ending at a moment. */
export interface SideMetrics {
  requests: number | null;
  /** null: the error query answers nothing (a broken query; the presets' own answer 0). */
  errors: number | null;
  /** P95 latency in seconds; null means Prometheus answers NaN. */
  p95: number | null;
  memory?: number;
  cpu?: number;
}

export type Scenario = (minute: number, side: 'canary' | 'stable') => SideMetrics;

/**
 * A MetricsSource for engine tests that answers the ingress-nginx preset's queries from a
 * scenario function of (minutes since start, side). It recognises queries by their shape only,
 * so the engine's rendered PromQL is exercised as written. PromQL itself is tested against a
 * real Prometheus in test/prometheus.
 */
export class ScriptedMetrics implements MetricsSource {
  readonly asked: { promql: string; at: Date }[] = [];
  failWith: Error | undefined;
  /** With failWith: fail only the queries this matches (all when unset). */
  failOn: RegExp | undefined;
  /** Warnings Prometheus attaches to every answer. */
  warnings: string[] = [];

  constructor(
    private readonly startMs: number,
    private readonly scenario: Scenario,
  ) {}

  async query(promql: string, at: Date): Promise<QueryResult> {
    this.asked.push({ promql, at });
    if (this.failWith && (!this.failOn || this.failOn.test(promql))) throw this.failWith;
    const side = promql.includes('canary!=""') || /pod=~"[^"]*canary/.test(promql) ? 'canary' : 'stable';
    const m = this.scenario((at.getTime() - this.startMs) / 60_000, side);
    // The sequential judges' baseline look-back (subqueries): this scripted Prometheus has none.
    if (promql.includes('_over_time(')) return { resultType: 'vector', samples: [], warnings: this.warnings };
    if (promql.startsWith('sum by (le) (')) {
      return { resultType: 'vector', samples: m.requests === null ? [] : bucketsFor(m.requests, m.p95), warnings: this.warnings };
    }
    let value: number | null;
    if (promql.includes('container_memory')) value = m.memory ?? null;
    else if (promql.includes('container_cpu')) value = m.cpu ?? null;
    else if (promql.startsWith('histogram_quantile')) value = m.p95 === null ? Number.NaN : m.p95;
    else if (promql.includes('status=~"5..')) value = m.errors;
    else if (promql.includes('nginx_ingress_controller_requests')) value = m.requests;
    else throw new Error(`ScriptedMetrics does not know the query ${promql}`);
    return {
      resultType: 'vector',
      samples: value === null ? [] : [{ labels: {}, value }],
      warnings: this.warnings,
    };
  }
}

const BOUNDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Cumulative bucket counts whose 95th percentile sits at `p95` (5% of requests slower, 1% slower
 * than twice it): enough shape for the sequential latency judge, in the per-window counts a
 * window's `sum by (le) (increase(..._bucket[1m]))` returns.
 */
function bucketsFor(requests: number, p95: number | null) {
  const slowerThan = (le: number) => (p95 === null ? 1 : le < p95 * 0.5 ? 0.6 : le < p95 ? 0.2 : le < p95 * 2 ? 0.05 : 0.01);
  return [
    ...BOUNDS.map((le) => ({ labels: { le: String(le) }, value: requests * (1 - slowerThan(le)) })),
    { labels: { le: '+Inf' }, value: requests },
  ];
}

export const healthy: Scenario = (_minute, side) =>
  side === 'canary'
    ? { requests: 240, errors: 1, p95: 0.2, memory: 200e6, cpu: 0.1 }
    : { requests: 2160, errors: 11, p95: 0.19, memory: 210e6, cpu: 0.9 };
