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
//    inflation factor φ = 1 + 2κv, the quasi-likelihood scaling. To catch a regression that only
//    starts at a later step without diluting it in earlier healthy evidence, the evidence is a
//    weighted average of likelihood ratios restarted at each planned step (an average of test
//    martingales started at stopping times is one; cf. Shin, Ramdas & Rinaldo, "E-detectors", 2023).
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
  /** Steps of the rollout; evidence restarts at each of them so late regressions are not diluted. */
  plannedSteps: number;
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

export interface ProportionAssessment {
  verdict: SequentialVerdict;
  /** What settled (or did not settle) the verdict. */
  basis: 'difference' | 'cap' | 'no-regression' | 'not-enough-evidence' | 'no-data';
  /** Counts behind the figures shown: since the step where the decisive evidence starts. */
  counts: SpanCounts;
  fromStep: number;
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
  moreRequestsNeeded?: number;
  /** Estimated squared coefficient of variation of per-minute rates (0 = binomial). */
  dispersion: number;
}

export interface ProportionTest {
  observe(window: ProportionWindow): ProportionAssessment;
}

interface Span {
  step: number;
  failWeight: number;
  counts: SpanCounts;
  capEvents: number;
  logRatio: number;
  capLogRatio: number;
  /** Σ w_i·(d_i), the stratified difference's numerator (observed minus expected canary events). */
  excess: number;
  /** Σ w_i with w_i = n_c·n_s/(n_c+n_s), so that excess/weight is the CMH risk difference. */
  weight: number;
  variance: number;
  passVariance: number;
}

const EMPTY_COUNTS = (): SpanCounts => ({ canaryRequests: 0, canaryEvents: 0, stableRequests: 0, stableEvents: 0 });

export function createProportionTest(config: ProportionTestConfig): ProportionTest {
  const spans: Span[] = [];
  const diffDispersion = createDispersionEstimator(config.dispersionPrior);
  const capDispersion = createDispersionEstimator(config.dispersionPrior);
  const total = EMPTY_COUNTS();
  let currentStep: number | null = null;
  let stepSpan: Span | null = null;
  let stepWindows: Array<{ nc: number; ns: number; xc: number; xs: number; cap: number }> = [];
  const planned = Math.max(1, Math.floor(config.plannedSteps));
  const capShare = config.cap === undefined ? 0 : 0.1;

  // The first step's restart is the whole rollout; it gets half the weight, later steps share the
  // rest. Weights sum to one, so the average stays a test martingale.
  const stepFailWeight = (index: number): number => {
    if (index >= planned) return 0;
    if (planned === 1) return 1;
    return index === 0 ? 0.5 : 0.5 / (planned - 1);
  };

  const startStep = (step: number): void => {
    const span: Span = {
      step,
      failWeight: stepFailWeight(spans.length),
      counts: EMPTY_COUNTS(),
      capEvents: 0,
      logRatio: 0,
      capLogRatio: 0,
      excess: 0,
      weight: 0,
      variance: 0,
      passVariance: 0,
    };
    spans.push(span);
    stepSpan = span;
    currentStep = step;
    stepWindows = [];
  };

  const smoothedRate = (events: number, requests: number): number => (events + 0.5) / (requests + 1);

  return {
    observe(window) {
      const step = window.step ?? 0;
      if (currentStep === null || step !== currentStep) startStep(step);
      const nc = sanitize(window.canary.requests);
      const ns = sanitize(window.stable.requests);
      const xc = Math.min(sanitize(window.canary.events), nc);
      const xs = Math.min(sanitize(window.stable.events), ns);
      const capC = Math.min(sanitize(window.canary.capEvents ?? 0), nc);
      const capS = window.stable.capEvents === undefined ? null : Math.min(sanitize(window.stable.capEvents), ns);

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

        let diffIncrement = 0;
        if (x > 0 && altShare > share) {
          const binomialVar = x * share * (1 - share);
          const kappa = diffDispersion.kappa(2 * binomialVar * binomialVar);
          const inflation = 1 + 2 * kappa * binomialVar;
          diffIncrement = binomialLogLikelihoodRatio(xc, x, share, altShare) / inflation;
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
          s.logRatio += diffIncrement;
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
      for (const s of spans) s.capEvents += capC;

      return assess();
    },
  };

  function assess(): ProportionAssessment {
    const whole = spans[0] as Span;
    const current = stepSpan as Span;
    const stableRateNow = smoothedRate(total.stableEvents, total.stableRequests);
    const margin = Math.max(0, config.margin(stableRateNow));
    const kappa = diffDispersion.kappa(1);

    const terms: Array<{ log: number; span: Span; basis: 'difference' | 'cap' }> = [];
    for (const s of spans) {
      if (s.failWeight <= 0) continue;
      terms.push({ log: Math.log(s.failWeight * (1 - capShare)) + s.logRatio, span: s, basis: 'difference' });
      if (capShare > 0) terms.push({ log: Math.log(s.failWeight * capShare) + s.capLogRatio, span: s, basis: 'cap' });
    }
    const logEvidence = logSumExp(terms.map((t) => t.log));
    const evidence = Math.exp(Math.min(700, logEvidence));
    const fails = logEvidence >= villeLogThreshold(config.alpha);

    if (total.canaryRequests <= 0 || total.stableRequests <= 0) {
      return {
        ...describeSpan(whole, margin, kappa),
        verdict: 'inconclusive',
        basis: 'no-data',
        confidence: 0,
        evidence,
      };
    }

    if (fails) {
      // Name the difference when it suffices on its own: "worse than stable" says more to an
      // operator than "above the cap".
      const differenceTerms = terms.filter((t) => t.basis === 'difference');
      const byDifference = logSumExp(differenceTerms.map((t) => t.log)) >= villeLogThreshold(config.alpha);
      const decisive = (byDifference ? differenceTerms : terms).reduce((best, t) => (t.log > best.log ? t : best));
      return {
        ...describeSpan(decisive.span, margin, kappa),
        verdict: 'fail',
        basis: decisive.basis,
        confidence: 1 - 1 / evidence,
        evidence,
      };
    }

    const wholeView = describeSpan(whole, margin, kappa);
    const passes =
      wholeView.passBound < margin &&
      current.logRatio <= 0 &&
      (capShare === 0 || current.capLogRatio <= 0) &&
      current.counts.canaryRequests >= config.minRequests;
    if (passes) {
      return { ...wholeView, verdict: 'pass', basis: 'no-regression', confidence: 1 - config.beta, evidence };
    }

    const needed = moreRequests(whole, wholeView.difference.estimate, margin);
    return {
      ...wholeView,
      verdict: 'inconclusive',
      basis: 'not-enough-evidence',
      confidence: Math.max(0, 1 - 1 / evidence),
      evidence,
      ...(needed === undefined ? {} : { moreRequestsNeeded: needed }),
    };
  }

  function describeSpan(span: Span, margin: number, kappa: number) {
    const c = span.counts;
    const estimate = span.weight > 0 ? span.excess / span.weight : 0;
    const radius = span.weight > 0 ? normalMixtureRadius(span.variance, config.rho, config.alpha) / span.weight : 1;
    const passRadius = span.weight > 0 ? normalMixtureRadius(span.passVariance, config.rho, config.beta) / span.weight : 1;
    return {
      counts: { ...c },
      fromStep: span.step,
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
    return Math.max(1, Math.ceil(total - have));
  }
}

function sanitize(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0;
}
