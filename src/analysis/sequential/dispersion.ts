// Overdispersion, learned from what Prometheus shows. Real error (and slow-request) rates wander
// from scrape to scrape on each side on their own — a bad pod, a retry storm, a cache miss — so
// a window's count varies more than a binomial would. We model one side's window count as
// beta-binomial: Var(rate) = p(1−p)·(1/n + ρ), where ρ is the share of variance that does not
// shrink with traffic (the intra-class correlation of Williams, "Extra-binomial variation in
// logistic linear models", Applied Statistics 1982). At 3 canary requests a minute ρ hardly
// matters; at 1,200 it dominates, and ignoring it is what makes a judge roll back equal canaries.
//
// ρ is estimated by the method of moments from stable alone, so a regressing canary cannot pass
// for noise: first from stable's window-to-window variation over the baseline look-back before
// the rollout (one query of stddev_over_time over a subquery), then from each window as it
// comes, as half the squared difference of successive windows' rates (von Neumann's successive
// differences: a slow drift of the rate does not inflate it). A window is judged with the ρ of
// earlier windows only. The error-rate judge also keeps one fed with the canary's windows, for
// when stable has too few errors to show any wander (binomial-sequential.ts).

export interface DispersionState {
  /** Σ of per-window ρ contributions and how many windows gave one (baseline included). */
  sum: number;
  count: number;
  /**
   * Σ of squared per-window contributions and how many gave one (windows seen, not the baseline's):
   * their spread is the estimate's real standard error, binomial noise included. Absent in states
   * saved before it was kept.
   */
  sumSq?: number;
  seen?: number;
  /** Last stable window's rate and requests, for the next successive difference. */
  last: { rate: number; requests: number } | null;
  /** Pooled events and requests seen, for p(1−p). */
  events: number;
  requests: number;
}

/** What the baseline look-back showed: mean and standard deviation of per-window rates, mean 1/n. */
export interface DispersionBaseline {
  meanRate: number;
  sdRate: number;
  meanInverseRequests: number;
  windows: number;
}

export interface DispersionEstimator {
  /** ρ to judge the next window with: the estimate so far, with a margin for its own uncertainty. */
  rho(): number;
  /** Windows the estimate rests on. */
  windows(): number;
  /** Mean events a window over what the estimate rests on (baseline included): too few, and ρ says little. */
  errorsPerWindow(): number;
  /** The sums the estimate rests on, and the last window's rate (for a caller's own differences). */
  moments(): WanderMoments;
  last(): { rate: number; requests: number } | null;
  /** Adds one stable window (after the window was judged). */
  addStable(events: number, requests: number): void;
  state(): DispersionState;
}

/** Until this many windows are seen, ρ keeps a cautious floor: a few quiet windows prove little. */
const SETTLED_WINDOWS = 20;
/** ρ beyond this (a per-window rate wandering by a third of √(p(1−p))) is a broken query, not noise. */
const MAX_RHO = 0.1;
/** The cautious floor: a per-window rate wander of about ±10% of a 1% error rate's scale. */
const CAUTIOUS_RHO = 0.003;

/**
 * `allowance`: how many standard errors of its own estimate ρ is judged with above it (2 for stable,
 * where it is the whole allowance for the wander; the canary's own estimate is a second guard).
 * `spreadAllowance`: if given, ρ is also judged at least that many standard errors of the mean
 * contribution (from their observed spread) above it.
 */
export function createDispersionEstimator(initial?: DispersionState, allowance = 2, spreadAllowance?: number): DispersionEstimator {
  const s: DispersionState = initial ? structuredClone(initial) : { sum: 0, count: 0, sumSq: 0, seen: 0, last: null, events: 0, requests: 0 };
  return {
    rho: () => rhoFromMoments(momentsOf(s), allowance, spreadAllowance),
    windows: () => s.count,
    errorsPerWindow: () => (s.count > 0 ? s.events / (s.count + 1) : 0),
    moments: () => momentsOf(s),
    last: () => (s.last ? { ...s.last } : null),
    addStable(events, requests) {
      if (!(requests > 0) || !Number.isFinite(events)) return;
      const rate = Math.min(1, Math.max(0, events / requests));
      s.events += Math.max(0, events);
      s.requests += requests;
      if (s.last) {
        const contribution = wanderContribution({ rate, requests }, s.last, (s.events + 0.5) / (s.requests + 1));
        s.sum += contribution;
        s.count += 1;
        s.sumSq = (s.sumSq ?? 0) + contribution * contribution;
        s.seen = (s.seen ?? 0) + 1;
      }
      s.last = { rate, requests };
    },
    state: () => structuredClone(s),
  };
}

/** The sums ρ is estimated from: per-window contributions, how many, their squares (and how many of those). */
export interface WanderMoments {
  sum: number;
  count: number;
  sumSq: number;
  seen: number;
}

const momentsOf = (s: DispersionState): WanderMoments => ({ sum: s.sum, count: s.count, sumSq: s.sumSq ?? 0, seen: s.seen ?? 0 });

/**
 * One successive difference's estimate of ρ: half its square over p(1−p), less the binomial part
 * (von Neumann). p is the pooled rate the two windows are taken to share.
 */
export function wanderContribution(now: { rate: number; requests: number }, last: { rate: number; requests: number }, p: number): number {
  const diff = now.rate - last.rate;
  return (diff * diff) / (2 * p * (1 - p)) - (1 / now.requests + 1 / last.requests) / 2;
}

/**
 * ρ to judge the next window with, from the contributions so far: their mean with a margin for its
 * own uncertainty (`allowance` standard errors, and `spreadAllowance` of their observed spread when
 * given), and the cautious floor until enough windows are in.
 */
export function rhoFromMoments(m: WanderMoments, allowance: number, spreadAllowance?: number): number {
  const estimate = m.count > 0 ? Math.min(MAX_RHO, Math.max(0, m.sum / m.count)) : 0;
  // The moment estimate's relative error is about √(2/m); judge with its upper end.
  let upper = estimate * (1 + allowance * Math.sqrt(2 / Math.max(1, m.count)));
  // That relative error is a chi-square's: it vanishes when the estimate comes out near 0, which
  // at a few errors a window it often does by chance, since binomial noise dominates each
  // squared difference. The contributions' own spread is the estimator's standard error
  // whatever they are made of.
  if (spreadAllowance !== undefined && m.seen >= 2) {
    const mean = m.count > 0 ? m.sum / m.count : 0;
    const spread = Math.max(0, m.sumSq / m.seen - mean * mean);
    upper = Math.max(upper, Math.max(0, mean) + spreadAllowance * Math.sqrt(spread / m.seen));
  }
  const floor = m.count >= SETTLED_WINDOWS ? 0 : CAUTIOUS_RHO * (1 - m.count / SETTLED_WINDOWS);
  return Math.max(upper, floor);
}

/** Seeds an estimator's state with the baseline look-back's moments (counted as its windows). */
export function dispersionFromBaseline(b: DispersionBaseline): DispersionState {
  const empty: DispersionState = { sum: 0, count: 0, last: null, events: 0, requests: 0 };
  // Moments that cannot come from rates of requests (a query answering something else) teach nothing.
  const plausible =
    b.meanRate >= 0 && b.meanRate <= 1 && b.sdRate >= 0 && b.sdRate <= 0.5 && b.meanInverseRequests > 0 && b.meanInverseRequests <= 1 && b.windows >= 3;
  if (!plausible) return empty;
  const p = Math.min(0.999, Math.max(1e-6, b.meanRate));
  const rho = (b.sdRate * b.sdRate) / (p * (1 - p)) - b.meanInverseRequests;
  const windows = Math.max(0, Math.floor(b.windows) - 1);
  const requests = b.meanInverseRequests > 0 ? b.windows / b.meanInverseRequests : 0;
  const usable = Number.isFinite(rho) && Number.isFinite(requests);
  return {
    sum: usable ? rho * windows : 0,
    count: usable ? windows : 0,
    last: null,
    events: usable ? p * requests : 0,
    requests: usable ? requests : 0,
  };
}
