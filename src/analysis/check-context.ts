import type { Policy } from '../policy/policy.js';
import { formatDuration, promDuration } from '../policy/units.js';
import { renderQuery, type QueryTarget, type Side } from './promql-template.js';
import { singleValue, type SingleValue } from './query-value.js';
import type { MetricsSource, QueryResult } from './types.js';

/**
 * Everything one check needs to ask Prometheus: the rendered queries, memoised so metrics that
 * share a query (the request counts) send it once per check.
 */
export class CheckContext {
  private readonly memo = new Map<string, Promise<QueryResult>>();
  /** Prometheus's own warnings ("metric might not be a counter") for this check, said once each. */
  readonly warnings = new Set<string>();
  readonly windowText: string;

  constructor(
    readonly policy: Policy,
    readonly target: QueryTarget,
    private readonly source: MetricsSource,
    readonly at: Date,
    readonly weight: number,
    /** 0-based rollout step; sequential judges weigh evidence per step. */
    readonly stepIndex: number,
  ) {
    this.windowText = formatDuration(policy.analysis.windowMs);
  }

  get minRequests(): number {
    return this.policy.analysis.minRequests;
  }

  /** Resolves a preset/policy query name to its template; anything else is a template already. */
  template(nameOrTemplate: string): string {
    return this.policy.analysis.queries[nameOrTemplate] ?? nameOrTemplate;
  }

  render(nameOrTemplate: string, side: Side, options: { quantile?: number; windowMs?: number } = {}): string {
    return renderQuery(this.template(nameOrTemplate), this.target, {
      side,
      selector: this.policy.analysis.selectors[side],
      windowPromQL: promDuration(options.windowMs ?? this.policy.analysis.windowMs),
      ...(options.quantile !== undefined && { quantile: options.quantile }),
    });
  }

  /** Every series of the answer (e.g. one per histogram bucket). */
  async result(promql: string): Promise<QueryResult> {
    let pending = this.memo.get(promql);
    if (!pending) {
      pending = this.source.query(promql, this.at).then((result) => {
        for (const warning of result.warnings) this.warnings.add(warning);
        return result;
      });
      this.memo.set(promql, pending);
    }
    return pending;
  }

  async value(promql: string): Promise<SingleValue> {
    return singleValue(await this.result(promql));
  }
}
