// The sequential comparison of two event proportions (errors per request, slow requests per
// request) that both canary judges share. One instance follows one metric through one whole
// rollout: evidence carries across steps, because the rollout is one sequential experiment.
//
// Method, in three parts:
//
// 1. Rolling back — Wald's SPRT (Wald 1945) on counts conditioned on each window's total events,
//    the construction Lindon, Sanden & Shirikian use for count metrics ("Rapid Regression Detection
//    in Software Deployments through Sequential Testing", KDD 2022; Lindon & Malek, "Anytime-valid
//    inference for multinomial count data", NeurIPS 2022). Given X events in a window shared by n_c
//    canary and n_s stable requests, the canary's count is Binomial(X, θ), with θ = n_c/(n_c+n_s)
//    when the canary is no worse (H0) and θ₁ = n_c·p₁ / (n_c·p₁ + n_s·p_s) when it is worse by the
//    margin (H1, p₁ = p_s + margin). Conditioning removes the unknown baseline rate and any drift
//    shared by canary and stable within the window exactly. p_s is a plug-in that uses only
//    earlier windows and this window's pooled total, so the likelihood ratio stays a test
//    martingale under H0 and Ville's inequality bounds P(ever rolling back a no-worse canary) ≤ α.
//    Overdispersion (see dispersion.ts) tempers each window's log-likelihood ratio by its variance
//    inflation factor φ = 1 + 2κv, the quasi-likelihood scaling.
//
//    Change points. A regression may begin at any minute — at a step, or in the middle of one when
//    a bad pod starts, a cache expires or a dependency degrades. A likelihood ratio that began
//    earlier carries the healthy minutes' (negative) evidence and must first work it off: a jump
//    from 0.5% to 12% five minutes into a step took five checks to roll back. So the evidence is
//    a mixture over change points, Σ_k w_k·M_t^(k), where M^(k) is the likelihood ratio restarted
//    at window k (the product of the per-window factors from k on, and 1 before k). Each M^(k) is
//    a test supermartingale under H0, the weights are fixed before window k is seen and sum to at
//    most one, so the mixture is one too and Ville's inequality keeps P(ever rolling back a
//    no-worse canary) ≤ α over the whole rollout, however long it is held. This is the
//    Shiryaev–Roberts statistic (Shiryaev 1963; Roberts, Technometrics 1966) with prior weights on
//    the change point instead of a plain sum. Shin, Ramdas & Rinaldo ("E-detectors: a
//    nonparametric framework for sequential change detection", New England Journal of Statistics in
//    Data Science, 2024) build change detectors from e-processes started at each time; weighting
//    them by a prior over the change point keeps the sum a test supermartingale, so what is
//    controlled is the probability of any false rollback (not only the average run length to
//    one). Lorden (Annals of Mathematical Statistics, 1971) shows why restarting matters: without
//    it the delay is set by how much evidence piled up before the change.
//    The weights (changePointWeight below): half on the planned step starts, where the canary's
//    share of traffic — and so the chance of a new failure mode showing — changes; half on every
//    window, by a horizon-scaled 1/(k(k+1)) sequence, nearly flat over the planned checks and
//    decaying after them so that a held rollout never runs out of weight. A change in the middle
//    of the 25% step (window ~20 of 40) gets about 1/180 of the mass where the step start gets
//    1/8: about 3 more nats of evidence, which a real jump supplies within its first window.
//    Each restarted ratio is itself a mixture over a few alternatives (the margin, 3× and 10× it;
//    see ALTERNATIVES), so that a jump far beyond the margin yields the evidence it carries from
//    the first window on rather than only what a just-over-the-margin alternative can extract.
//    An absolute cap (canary rate above e.g. 5%) is a one-sample SPRT in the same average, against
//    max(cap, stable's rate in the window): a canary that is no worse than stable is never blamed
//    for an incident stable shares.
//
// 2. Passing — the upper end of a time-uniform confidence sequence for the difference of the two
//    rates (normal mixture; Howard et al., Annals of Statistics 2021, eq. (14)) over the stratified
//    (Cochran–Mantel–Haenszel) risk difference, at level β, with the variance taken at the
//    alternative (canary rate = stable + margin) and inflated for overdispersion. When that bound
//    is below the margin, a canary worse by the margin would have shown it with probability ≥ 1−β.
//
// 3. Reporting — the same confidence sequence at level α gives the range shown to the operator.

import { createDispersionEstimator, type DispersionEstimator } from './dispersion.js';
import { binomialLogLikelihoodRatio, logSumExp, normalMixtureRadius, villeLogThreshold } from './evidence.js';
import type { SequentialVerdict } from './types.js';

export interface ProportionSide {
  requests: number;
  events: number;
  /** Events beyond the absolute limit (errors for an error rate; requests slower than the limit for latency). */
  capEvents?: number;
}

export interface ProportionWindow {
  canary: ProportionSide;
  stable: ProportionSide;
  /** Index of the rollout step this window belongs to; a change starts a new step. */
  step?: number;
  /** When this window's counts begin (check time minus the window), to name where evidence starts. */
  startedAt?: Date;
}

export interface ProportionTestConfig {
  /** Bound on P(roll back | canary no worse than stable), over the whole rollout. */
  alpha: number;
  /** Bound on P(pass | canary worse by the margin). */
  beta: number;
  /** Absolute margin (fraction) at a given stable rate. */
  margin: (stableRate: number) => number;
  /** Absolute cap on the canary's rate of cap events (fraction), if any. */
  cap?: number;
  /** How far above the cap the cap test's alternative sits (fraction). */
  capMargin?: number;
  /** Canary requests needed in the current step before it may pass. */
  minRequests: number;
  /** Steps of the rollout; half the change-point weight sits on their starts. */
  plannedSteps: number;
  /** Check windows of the rollout when every step advances on time; the horizon of the per-window weights. */
  plannedChecks: number;
  /** Prior squared coefficient of variation of per-window rates (overdispersion), before data. */
  dispersionPrior: number;
  /** Where the reported confidence sequence is tightest, in units of event variance. */
  rho: number;
}

export interface SpanCounts {
  canaryRequests: number;
  canaryEvents: number;
  stableRequests: number;
  stableEvents: number;
}

/** Where the evidence behind a decision starts, so an explanation can name it. */
export interface EvidenceOrigin {
  /** 0-based index of the first window (among the windows this test was shown). */
  window: number;
  /** Windows from there to now, inclusive. */
  windows: number;
  /** Step of the first window, and its position in that step (0 = the step's first window). */
  step: number;
  windowInStep: number;
  /** When the first window's counts begin, if the caller said. */
  startedAt?: Date;
}

export interface ProportionAssessment {
  verdict: SequentialVerdict;
  /** What settled (or did not settle) the verdict. */
  basis: 'difference' | 'cap' | 'no-regression' | 'not-enough-evidence' | 'no-data';
  /** Counts behind the figures shown: from the window where the decisive evidence starts. */
  counts: SpanCounts;
  /** Step where the evidence shown starts (same as origin.step). */
  fromStep: number;
  origin: EvidenceOrigin;
  canaryRate: number;
  stableRate: number;
  /** Canary rate of cap events over the same counts, when a cap is judged. */
  canaryCapRate: number | null;
  margin: number;
  /** Canary minus stable rate: stratified estimate and a (1−α) time-uniform range. */
  difference: { estimate: number; lower: number; upper: number };
  /** Upper (1−β) bound on the difference over the whole rollout, used to pass. */
  passBound: number;
  confidence: number;
  /** Evidence for a regression: the e-value (rollback at 1/α). */
  evidence: number;
  /**
   * For inconclusive: roughly how many more canary requests should settle it; 0 when the range
   * already clears the bar and only the test itself (or the step's minimum) has to catch up.
   */
  moreRequestsNeeded?: number;
  /** Canary requests in the latest window, to say whether the next check is likely to settle it. */
  lastWindowCanaryRequests: number;
  /** Estimated squared coefficient of variation of per-minute rates (0 = binomial). */
  dispersion: number;
}

export interface ProportionTest {
  observe(window: ProportionWindow): ProportionAssessment;
}

/** The likelihood ratios and counts from one change point (a window) to now. */
interface Span {
  origin: Omit<EvidenceOrigin, 'windows'>;
  windows: number;
  failWeight: number;
  counts: SpanCounts;
  capEvents: number;
  /** Log likelihood ratio per alternative in ALTERNATIVES (the first is the margin itself). */
  logRatios: number[];
  capLogRatio: number;
  /** Σ w_i·(d_i), the stratified difference's numerator (observed minus expected canary events). */
  excess: number;
  /** Σ w_i with w_i = n_c·n_s/(n_c+n_s), so that excess/weight is the CMH risk difference. */
  weight: number;
  variance: number;
  passVariance: number;
}

const EMPTY_COUNTS = (): SpanCounts => ({ canaryRequests: 0, canaryEvents: 0, stableRequests: 0, stableEvents: 0 });

/**
 * Alternatives the regression evidence mixes over, as multiples of the margin, with their prior
 * weights (Robbins' mixture SPRT, "Statistical methods related to the law of the iterated
 * logarithm", Annals of Mathematical Statistics 1970, on a grid). Most weight stays on the margin
 * itself, where the test must be sharpest; the rest lets a jump far beyond the margin (12% errors
 * against a 3-point margin, 2× latency against 1.5×) count for what it is within one window, which
 * matters most right after a change point, where a restarted ratio has one window to work with.
 * The weights sum to one, so the mixture is still a test supermartingale.
 */
const ALTERNATIVES = [
  { scale: 1, weight: 0.7 },
  { scale: 3, weight: 0.2 },
  { scale: 10, weight: 0.1 },
] as const;

/** Share of the change-point weight on planned step starts; the rest is spread over every window. */
const STEP_START_SHARE = 0.5;

/**
 * Prior weight of a change at window `index` (0-based), the `stepsBefore`-th step start if it is
 * one. Step starts: a quarter of the mass on the first (the whole rollout), a quarter shared by
 * the other planned steps; unplanned extra steps get none. Every window: half the mass as
 * H/((k+H)(k+H+1)), which telescopes to exactly 1 over k = 0, 1, 2, … — about 1/H each over the
 * planned H checks, and a tail that keeps a held rollout covered. Weights depend only on the
 * window's position, never on its counts, and sum to at most 1: the mixture stays a test
 * supermartingale.
 */
export function changePointWeight(index: number, stepStart: number | null, plannedSteps: number, plannedChecks: number): number {
  const horizon = Math.max(1, plannedChecks);
  const perWindow = ((1 - STEP_START_SHARE) * horizon) / ((index + horizon) * (index + horizon + 1));
  if (stepStart === null || stepStart >= plannedSteps) return perWindow;
  const first = plannedSteps === 1 ? STEP_START_SHARE : STEP_START_SHARE / 2;
  const step = stepStart === 0 ? first : (STEP_START_SHARE - first) / (plannedSteps - 1);
  return perWindow + step;
}

export function createProportionTest(config: ProportionTestConfig): ProportionTest {
  const spans: Span[] = [];
  const diffDispersion = createDispersionEstimator(config.dispersionPrior);
  const capDispersion = createDispersionEstimator(config.dispersionPrior);
  const total = EMPTY_COUNTS();
  let currentStep: number | null = null;
  let stepsSeen = 0;
  let stepFirstWindow = 0;
  let stepSpan: Span | null = null;
  let lastCanaryRequests = 0;
  let stepWindows: Array<{ nc: number; ns: number; xc: number; xs: number; cap: number }> = [];
  const plannedSteps = Math.max(1, Math.floor(config.plannedSteps));
  const plannedChecks = Math.max(1, Math.floor(config.plannedChecks));
  const capShare = config.cap === undefined ? 0 : 0.1;

  // Every window is a candidate change point: it starts a span whose likelihood ratio is 1 until
  // its own counts arrive.
  const startSpan = (step: number, startedAt: Date | undefined): void => {
    const index = spans.length;
    const isStepStart = currentStep === null || step !== currentStep;
    if (isStepStart) {
      currentStep = step;
      stepFirstWindow = index;
      stepWindows = [];
    }
    const span: Span = {
      origin: { window: index, step, windowInStep: index - stepFirstWindow, ...(startedAt ? { startedAt } : {}) },
      windows: 0,
      failWeight: changePointWeight(index, isStepStart ? stepsSeen : null, plannedSteps, plannedChecks),
      counts: EMPTY_COUNTS(),
      capEvents: 0,
      logRatios: ALTERNATIVES.map(() => 0),
      capLogRatio: 0,
      excess: 0,
      weight: 0,
      variance: 0,
      passVariance: 0,
    };
    if (isStepStart) {
      stepsSeen++;
      stepSpan = span;
    }
    spans.push(span);
  };

  const smoothedRate = (events: number, requests: number): number => (events + 0.5) / (requests + 1);

  return {
    observe(window) {
      startSpan(window.step ?? 0, window.startedAt);
      const nc = sanitize(window.canary.requests);
      const ns = sanitize(window.stable.requests);
      const xc = Math.min(sanitize(window.canary.events), nc);
      const xs = Math.min(sanitize(window.stable.events), ns);
      const capC = Math.min(sanitize(window.canary.capEvents ?? 0), nc);
      const capS = window.stable.capEvents === undefined ? null : Math.min(sanitize(window.stable.capEvents), ns);
      lastCanaryRequests = nc;

      if (nc > 0 && ns > 0) {
        const n = nc + ns;
        const x = xc + xs;
        const share = nc / n;
        // Stable's rate for the alternative: earlier windows plus this window's pooled total — both
        // known before the canary's share of this window's events is looked at.
        const stableRate = Math.min(0.999, smoothedRate(total.stableEvents + x, total.stableRequests + n));
        const margin = Math.max(0, config.margin(stableRate));
        const altRate = Math.min(0.9999, stableRate + margin);
        const altShare = (nc * altRate) / (nc * altRate + ns * stableRate);

        const diffIncrements = ALTERNATIVES.map(() => 0);
        if (x > 0 && altShare > share) {
          const binomialVar = x * share * (1 - share);
          const kappa = diffDispersion.kappa(2 * binomialVar * binomialVar);
          const inflation = 1 + 2 * kappa * binomialVar;
          ALTERNATIVES.forEach((alternative, a) => {
            const rate = Math.min(0.9999, stableRate + alternative.scale * margin);
            const alt = (nc * rate) / (nc * rate + ns * stableRate);
            diffIncrements[a] = binomialLogLikelihoodRatio(xc, x, share, alt) / inflation;
          });
        }

        let capIncrement = 0;
        if (config.cap !== undefined && window.canary.capEvents !== undefined) {
          const nullRate = Math.min(0.99, Math.max(config.cap, capS === null ? 0 : capS / ns));
          const capAlt = Math.min(0.999, nullRate + (config.capMargin ?? config.cap / 2));
          const mean = nc * nullRate;
          const kappa = capDispersion.kappa(mean * mean);
          capIncrement = binomialLogLikelihoodRatio(capC, nc, nullRate, capAlt) / (1 + kappa * mean);
        }

        // Variance of w·d for the confidence sequence, at the current step's rates (drift makes the
        // whole-rollout rate a poor guide to this minute's variance).
        const span = stepSpan as Span;
        const pc = smoothedRate(span.counts.canaryEvents + xc, span.counts.canaryRequests + nc);
        const ps = smoothedRate(span.counts.stableEvents + xs, span.counts.stableRequests + ns);
        const kappaNow = diffDispersion.kappa(2 * (x * share * (1 - share)) ** 2 + 1e-9);
        const sideVar = (rate: number, requests: number) => {
          const mean = requests * rate;
          return mean * (1 - rate) * (1 + kappaNow * mean);
        };
        const varianceIncrement = (1 - share) ** 2 * sideVar(pc, nc) + share ** 2 * sideVar(ps, ns);
        const passVarianceIncrement =
          (1 - share) ** 2 * sideVar(Math.min(0.9999, Math.max(pc, ps + margin)), nc) + share ** 2 * sideVar(ps, ns);
        const weight = (nc * ns) / n;
        const excess = xc - share * x;

        for (const s of spans) {
          for (let a = 0; a < diffIncrements.length; a++) (s.logRatios[a] as number) += diffIncrements[a] as number;
          s.capLogRatio += capIncrement;
          s.excess += excess;
          s.weight += weight;
          s.variance += varianceIncrement;
          s.passVariance += passVarianceIncrement;
        }

        // Residuals against the fit of earlier windows of this step, so a regression is not mistaken
        // for noise and a window is not judged with a κ it helped estimate.
        if (stepWindows.length > 0) {
          const prior = stepWindows.reduce(
            (acc, w) => ({ nc: acc.nc + w.nc, ns: acc.ns + w.ns, xc: acc.xc + w.xc, xs: acc.xs + w.xs, cap: acc.cap + w.cap }),
            { nc: 0, ns: 0, xc: 0, xs: 0, cap: 0 },
          );
          const relativeRisk = smoothedRate(prior.xc, prior.nc) / smoothedRate(prior.xs, prior.ns);
          const fitShare = (nc * relativeRisk) / (nc * relativeRisk + ns);
          if (x > 0) {
            const v = x * fitShare * (1 - fitShare);
            diffDispersion.add(xc - x * fitShare, v, 2 * v * v);
          }
          if (config.cap !== undefined && window.canary.capEvents !== undefined) {
            const capRate = smoothedRate(prior.cap, prior.nc);
            const mean = nc * capRate;
            capDispersion.add(capC - mean, mean * (1 - capRate), mean * mean);
          }
        }
        stepWindows.push({ nc, ns, xc, xs, cap: capC });
      }

      for (const counts of [total, ...spans.map((s) => s.counts)]) {
        counts.canaryRequests += nc;
        counts.canaryEvents += xc;
        counts.stableRequests += ns;
        counts.stableEvents += xs;
      }
      for (const s of spans) {
        s.capEvents += capC;
        s.windows++;
      }

      return assess();
    },
  };

  function assess(): ProportionAssessment {
    const whole = spans[0] as Span;
    const current = stepSpan as Span;
    const stableRateNow = smoothedRate(total.stableEvents, total.stableRequests);
    const margin = Math.max(0, config.margin(stableRateNow));
    const kappa = diffDispersion.kappa(1);

    // Spans that have seen no counts yet (a window without traffic) still count at weight × 1.
    const terms: Array<{ log: number; span: Span; basis: 'difference' | 'cap' }> = [];
    for (const s of spans) {
      if (s.failWeight <= 0) continue;
      ALTERNATIVES.forEach((alternative, a) => {
        terms.push({ log: Math.log(s.failWeight * (1 - capShare) * alternative.weight) + (s.logRatios[a] as number), span: s, basis: 'difference' });
      });
      if (capShare > 0) terms.push({ log: Math.log(s.failWeight * capShare) + s.capLogRatio, span: s, basis: 'cap' });
    }
    const logEvidence = logSumExp(terms.map((t) => t.log));
    const evidence = Math.exp(Math.min(700, logEvidence));
    const fails = logEvidence >= villeLogThreshold(config.alpha);
    const lastWindowCanaryRequests = lastCanaryRequests;

    if (total.canaryRequests <= 0 || total.stableRequests <= 0) {
      return {
        ...describeSpan(whole, margin, kappa),
        verdict: 'inconclusive',
        basis: 'no-data',
        confidence: 0,
        evidence,
        lastWindowCanaryRequests,
      };
    }

    if (fails) {
      // Name the difference when it suffices on its own: "worse than stable" says more to an
      // operator than "above the cap". Show the change point that contributes most to the
      // mixture: where the evidence for this regression starts.
      const differenceTerms = terms.filter((t) => t.basis === 'difference');
      const byDifference = logSumExp(differenceTerms.map((t) => t.log)) >= villeLogThreshold(config.alpha);
      const decisive = (byDifference ? differenceTerms : terms).reduce((best, t) => (t.log > best.log ? t : best));
      return {
        ...describeSpan(decisive.span, margin, kappa),
        verdict: 'fail',
        basis: decisive.basis,
        confidence: 1 - 1 / evidence,
        evidence,
        lastWindowCanaryRequests,
      };
    }

    const wholeView = describeSpan(whole, margin, kappa);
    const stepRequestsShort = Math.max(0, config.minRequests - current.counts.canaryRequests);
    const passes =
      wholeView.passBound < margin &&
      (current.logRatios[0] as number) <= 0 &&
      (capShare === 0 || current.capLogRatio <= 0) &&
      stepRequestsShort <= 0;
    if (passes) {
      return { ...wholeView, verdict: 'pass', basis: 'no-regression', confidence: 1 - config.beta, evidence, lastWindowCanaryRequests };
    }

    const needed = moreRequests(whole, wholeView.difference.estimate, margin);
    return {
      ...wholeView,
      verdict: 'inconclusive',
      basis: 'not-enough-evidence',
      confidence: Math.max(0, 1 - 1 / evidence),
      evidence,
      lastWindowCanaryRequests,
      ...(needed === undefined ? {} : { moreRequestsNeeded: Math.max(needed, Math.ceil(stepRequestsShort)) }),
    };
  }

  function describeSpan(span: Span, margin: number, kappa: number) {
    const c = span.counts;
    const estimate = span.weight > 0 ? span.excess / span.weight : 0;
    const radius = span.weight > 0 ? normalMixtureRadius(span.variance, config.rho, config.alpha) / span.weight : 1;
    const passRadius = span.weight > 0 ? normalMixtureRadius(span.passVariance, config.rho, config.beta) / span.weight : 1;
    return {
      counts: { ...c },
      fromStep: span.origin.step,
      origin: { ...span.origin, windows: span.windows },
      canaryRate: c.canaryRequests > 0 ? c.canaryEvents / c.canaryRequests : 0,
      stableRate: c.stableRequests > 0 ? c.stableEvents / c.stableRequests : 0,
      canaryCapRate: config.cap !== undefined && c.canaryRequests > 0 ? span.capEvents / c.canaryRequests : null,
      margin,
      difference: { estimate, lower: Math.max(-1, estimate - radius), upper: Math.min(1, estimate + radius) },
      passBound: Math.min(1, estimate + passRadius),
      dispersion: kappa,
    };
  }

  // The confidence sequence's half-width shrinks roughly like 1/√(canary requests); ask how many
  // requests would bring it inside the gap that separates the current estimate from a decision.
  // 0 when it is already inside: the decision waits on the likelihood ratio, not on more range.
  function moreRequests(span: Span, estimate: number, margin: number): number | undefined {
    const have = span.counts.canaryRequests;
    if (!(have > 0) || !(span.weight > 0)) return undefined;
    const towardsFail = estimate >= margin / 2;
    const halfWidth = towardsFail
      ? normalMixtureRadius(span.variance, config.rho, config.alpha) / span.weight
      : normalMixtureRadius(span.passVariance, config.rho, config.beta) / span.weight;
    const gap = towardsFail ? estimate : margin - estimate;
    if (!(gap > 0)) return undefined;
    const total = have * (halfWidth / gap) ** 2;
    return Math.max(0, Math.ceil(total - have));
  }
}

function sanitize(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0;
}
