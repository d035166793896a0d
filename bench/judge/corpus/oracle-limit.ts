import { changePointWeight } from '../../../src/analysis/sequential/change-point.js';
import { logSumExp } from '../../../src/analysis/sequential/evidence.js';
import { Rng } from './random.js';

// The third information limit (issue 15, item 6): how many checks a judge that knows every
// parameter of the rollout but the regression's onset needs. The fixed-sample limits beside it
// assume the onset known and the sample size fixed in advance; a judge that must hold alpha over
// the whole rollout, whenever a regression begins, cannot reach them. This oracle can be reached
// only by a judge that knows stable's rate, the canary's rate before and after the onset, and the
// wander: it tests the regressed rate against the null's boundary by the likelihood ratio of a
// window's share (normal, with the window's true variance), mixed over onsets with the judge's
// own prior weights (change-point.ts), and rolls back at the judge's Ville threshold. The mixture
// is a Shiryaev–Roberts recursion, M_t = (M_{t−1} + w_t)·LR_t (Roberts 1966), since every onset's
// test uses the same alternative. What a real judge pays beyond it is the price of learning the
// parameters; what the oracle pays beyond the fixed-sample limit is the price of not knowing when
// the regression begins (Lai, IEEE Trans. Inf. Theory 1998: ≈ log(windows/alpha) / KL).

export interface OracleRollout {
  /** Windows the rollout may run (planned checks and the holds after them). */
  windows: number;
  /** The canary's requests in window i (0-based from the rollout's start). */
  requests(i: number): number;
  /** The planned step that starts with window i (0-based), or null. */
  stepStart(i: number): number | null;
  plannedSteps: number;
  plannedChecks: number;
  /** The first window holding regressed traffic, and the share of it that does. */
  onsetWindow: number;
  onsetShare: number;
  /** The canary's share (errors, or requests slower than the line) before and after the onset. */
  before: number;
  after: number;
  /** The null hypothesis's boundary the oracle tests the regressed share against. */
  boundary: number;
  /** A window's variance of the share at p with n canary requests (binomial and wander). */
  variance(p: number, n: number): number;
  /** The judge's rollback level (a metric's alpha, less the hold's share). */
  level: number;
  seed: number;
  draws: number;
}

/** Median checks from the first regressed window (counted 1) to the oracle's rollback; null if it mostly never rolls back. */
export function changePointOracleChecks(r: OracleRollout): number | null {
  const rng = new Rng(r.seed);
  const threshold = Math.log(1 / r.level);
  const delays: number[] = [];
  for (let d = 0; d < r.draws; d++) {
    let logM = -Infinity;
    for (let i = 0; i < r.windows; i++) {
      const n = r.requests(i);
      const regressed = i < r.onsetWindow ? 0 : i === r.onsetWindow ? r.onsetShare : 1;
      const truth = r.before + regressed * (r.after - r.before);
      const w = Math.log(changePointWeight(i, r.stepStart(i), r.plannedSteps, r.plannedChecks));
      logM = logSumExp([logM, w]);
      if (!(n > 0)) continue;
      const y = truth + Math.sqrt(r.variance(truth, n)) * rng.normal();
      const [v0, v1] = [r.variance(r.boundary, n), r.variance(r.after, n)];
      logM += (y - r.boundary) ** 2 / (2 * v0) - (y - r.after) ** 2 / (2 * v1) + 0.5 * Math.log(v0 / v1);
      // A rollback before the onset is a false one, not a detection: the oracle is asked how
      // fast it sees a regression, so it carries on (its false alarms are bounded by its level).
      if (i >= r.onsetWindow && logM >= threshold) {
        delays.push(i - r.onsetWindow + 1);
        break;
      }
    }
  }
  if (delays.length * 2 < r.draws) return null;
  delays.sort((a, b) => a - b);
  return delays[Math.floor((r.draws - 1) / 2)] ?? null;
}
