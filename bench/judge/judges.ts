// The three competing judges, each reduced to what the benchmark needs: shown one check window
// at a time, say whether to roll back now.

import { createErrorRateJudge } from '../../src/analysis/sequential/binomial-sequential.js';
import { histogramQuantile } from '../../src/analysis/sequential/histogram.js';
import { createLatencyJudge } from '../../src/analysis/sequential/latency-sequential.js';
import { preRolloutStableBuckets, type CheckWindow, type Scenario } from './corpus.js';
import { mannWhitney } from './mann-whitney.js';

export interface RunningJudge {
  /** True when this check's evidence makes the judge roll back. */
  rollsBack(window: CheckWindow): boolean;
  /** Whether the judge's last word on this step was a pass (sequential only). */
  passed?: () => boolean;
}

export interface BenchJudge {
  name: string;
  /** Follows the engine's rule for windows without canary traffic (hold the step, then stop). */
  holdsWithoutTraffic?: boolean;
  start(scenario: Scenario): RunningJudge;
}

const ERROR_MAX = 0.05;
const ERROR_MARGIN = 0.03;
const P95_MAX = 2;
const P95_RATIO = 1.5;

/**
 * (a) The sequential judge: the error-rate and latency judges, each at α = 0.5%, so that the
 * rollout as a whole rolls back a healthy canary with probability ≤ 1% (Bonferroni).
 */
export const sequentialJudge: BenchJudge = {
  name: '(a) sequential',
  holdsWithoutTraffic: true,
  start(scenario) {
    const errors = createErrorRateJudge({ margin: ERROR_MARGIN, cap: ERROR_MAX, alpha: 0.005, beta: 0.05 });
    const latency = createLatencyJudge({ baseline: preRolloutStableBuckets(scenario), ratio: P95_RATIO, limit: P95_MAX, alpha: 0.005, beta: 0.05 });
    let lastPass = false;
    return {
      rollsBack(w) {
        const e = errors.observe({
          canary: { requests: w.canary.requests, errors: w.canary.errors },
          stable: { requests: w.stable.requests, errors: w.stable.errors },
          step: w.step,
        });
        const l = latency.observe({ canary: { buckets: w.canary.buckets }, stable: { buckets: w.stable.buckets }, step: w.step });
        lastPass = e.decision === 'pass' && l.decision === 'pass';
        return e.decision === 'fail' || l.decision === 'fail';
      },
      passed: () => lastPass,
    };
  },
};

/**
 * (b) Flagger-like fixed thresholds: a check fails when this window's ratio breaks a threshold;
 * no data (NaN, as a rate over zero requests is) fails the check, as in Flagger. Rollback once
 * the count of failed checks reaches the threshold (Flagger does not reset it on success).
 */
export function thresholdJudge(failureThreshold: number): BenchJudge {
  return {
    name: `(b) threshold, rollback after ${failureThreshold}`,
    start() {
      let failed = 0;
      return {
        rollsBack(w) {
          const canaryRate = w.canary.requests > 0 ? w.canary.errors / w.canary.requests : Number.NaN;
          const stableRate = w.stable.requests > 0 ? w.stable.errors / w.stable.requests : Number.NaN;
          const canaryP95 = histogramQuantile(0.95, w.canary.buckets);
          const stableP95 = histogramQuantile(0.95, w.stable.buckets);
          const errorFails = !(canaryRate <= ERROR_MAX) || !(canaryRate <= stableRate + ERROR_MARGIN);
          const latencyFails = !(canaryP95 <= P95_MAX) || !(canaryP95 <= P95_RATIO * stableP95);
          if (errorFails || latencyFails) failed++;
          return failed >= failureThreshold;
        },
      };
    },
  };
}

/**
 * (c) Kayenta-like: Mann-Whitney U on the per-window values of each metric (error ratio, P95)
 * since the start of the rollout, canary against stable, re-run at every check; a metric fails
 * when the canary is higher at 98% confidence (Kayenta's default). Windows without data are
 * dropped, as Kayenta drops NaN.
 */
export const mannWhitneyJudge: BenchJudge = {
  name: '(c) Mann-Whitney each check',
  start() {
    const canaryErrors: number[] = [];
    const stableErrors: number[] = [];
    const canaryP95: number[] = [];
    const stableP95: number[] = [];
    const push = (into: number[], value: number) => {
      if (Number.isFinite(value)) into.push(value);
    };
    const higher = (canary: number[], stable: number[]) => {
      const r = mannWhitney(canary, stable);
      return r.p < 0.02 && r.direction > 0;
    };
    return {
      rollsBack(w) {
        push(canaryErrors, w.canary.requests > 0 ? w.canary.errors / w.canary.requests : Number.NaN);
        push(stableErrors, w.stable.requests > 0 ? w.stable.errors / w.stable.requests : Number.NaN);
        push(canaryP95, histogramQuantile(0.95, w.canary.buckets));
        push(stableP95, histogramQuantile(0.95, w.stable.buckets));
        return higher(canaryErrors, stableErrors) || higher(canaryP95, stableP95);
      },
    };
  },
};

export const JUDGES: readonly BenchJudge[] = [sequentialJudge, thresholdJudge(1), thresholdJudge(5), mannWhitneyJudge];
