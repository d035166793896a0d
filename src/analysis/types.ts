// The vocabulary of analysis: what Prometheus answered, what a metric observed on each side,
// and the verdicts a judge draws from it. Everything here is plain data so it can be stored in
// the rollout record, replayed, and shown in `status` exactly as it was decided.

export interface InstantSample {
  labels: Record<string, string>;
  /** Prometheus sends numbers as strings; "NaN" and "+Inf" arrive here as NaN and Infinity. */
  value: number;
}

export interface QueryResult {
  resultType: 'vector' | 'scalar';
  samples: InstantSample[];
  warnings: string[];
}

/** Answers a PromQL instant query as of a moment (live Prometheus, a recording, or a fake). */
export interface MetricsSource {
  query(promql: string, at: Date): Promise<QueryResult>;
}

/**
 * pending: a sequential judge is still gathering evidence; traffic flows and nothing points to a
 * regression yet, but nothing shows the canary healthy either, so a step does not advance on it.
 */
export type Verdict = 'pass' | 'fail' | 'inconclusive' | 'pending' | 'info';
export type Unit = 'ratio' | 'seconds' | 'bytes' | 'cores' | 'count';

/** One comparison drawn from a metric: e.g. "canary error rate ≤ stable + 3 points". */
export interface CheckResult {
  metric: string;
  /** Short human label of the comparison, e.g. "error rate ≤ 5%". */
  check: string;
  judge: 'threshold' | 'sequential' | 'report';
  critical: boolean;
  unit: Unit;
  canary: number | null;
  stable: number | null;
  /** The limit the canary value was held to (absolute, after applying stable for relative checks). */
  threshold: number | null;
  verdict: Verdict;
  /** Plain words an operator understands, with the numbers that decided. */
  reason: string;
  /** The PromQL that produced the evidence, rendered exactly as sent. */
  queries: string[];
  /** Judge-specific evidence (counts, bounds) kept for reports and incidents. */
  evidence?: Record<string, number | string | null>;
  /**
   * Set by a sequential judge while its verdict is pending but the estimate is above a cap or
   * this step's evidence leans towards a regression: the step must not advance on schedule.
   */
  adverse?: string;
  /**
   * Past the end of a step's hold: evidence that still leans or an estimate still above a cap, too
   * weak to roll back on within alpha. The step keeps holding (traffic never goes up on it).
   */
  holding?: string;
}

export type CheckVerdict = 'pass' | 'fail' | 'inconclusive' | 'pending';

export interface CheckRecord {
  /** 1-based number of the check within the rollout. */
  index: number;
  at: string;
  stepIndex: number;
  weight: number;
  verdict: CheckVerdict;
  results: CheckResult[];
  /** What Prometheus warned about while answering this check's queries. */
  warnings?: string[];
}
