// The sequential error-rate judge: canary against stable on error and request counts per check
// window, valid however often it looks. It tests the policy's own words.
//
// Roll back when the canary is worse than stable by more than `margin` (maxIncrease, 3 points),
// or when its error rate is above `cap` (max, 5%). Promote a canary worse by half the margin or
// less. Between the two is the indifference zone, where either decision is acceptable.
//
// Difference — H0: canary rate ≤ stable + margin/2, for ANY stable rate (composite); H1: canary
//   rate ≥ stable + margin. Each span's evidence is the two sides' likelihood at predictable
//   estimates (stable's rate so far; the canary at stable + the margin, 5/3, 3 and 10 × it, and at
//   its own running rate over the span, held at least at the margin) over the null's maximum
//   likelihood over the span (composite.ts: universal inference, running MLE). So a canary at 1%
//   against a stable at 0% is no evidence at all: it fits the null's boundary.
// Cap — H0: canary rate ≤ cap; H1: anything above it (the running rate, held just above the cap,
//   and 1.5 × and 3 × the cap): evidence grows with traffic for every canary over the cap.
// Overdispersion (dispersion.ts): each side's rate wanders between windows; each window's counts
//   are divided by their variance inflation φ = 1 + ρ·n (effective counts, a quasi-likelihood;
//   McCullagh & Nelder §9.2), with ρ learned from stable's own window-to-window variation. A
//   stable with (almost) no errors shows no wander, so there the canary's counts are divided by
//   the larger of that ρ and one learned the same way from the canary's own earlier windows: a
//   canary 1 point worse than a zero-error stable, its rate wandering as real rates do, was judged
//   as binomial and rolled back 16% of the time at alpha 0.5% (sequential-wander-validity.test.ts).
// Evidence from all windows, restarted at every window (change-point.ts), rolls back at 1/α
//   (Ville's inequality): P(rolling back a canary within half the margin) ≤ α over the rollout.
// pass — this step may advance with proof: a (1−β) time-uniform upper bound on the difference over
//   this step's windows (Howard et al., Annals of Statistics 2021, normal mixture over the
//   Cochran–Mantel–Haenszel risk difference, variance inflated by ρ) is below the margin.

import { invalidInput } from '../../errors.js';
import { createChangePointMixture, spanLogs, type ChangePointState, type SpanState } from './change-point.js';
import { createDispersionEstimator, type DispersionState } from './dispersion.js';
import { binomialLogLik, capNullLogLik, differenceNullLogLik, shrunkRate } from './composite.js';
import { normalMixtureRadius, villeLogThreshold } from './evidence.js';
import { alphaSplit, holdEnds } from './hold.js';
import { spanWanderIncrement, spanWanderRho, WANDER_SLOTS } from './span-wander.js';
import { aboveCap, holdEndAdverse, leanLogEvidence, LEANING, moreChecks } from './step-evidence.js';
import { confidenceWords, count, evidenceOriginWords, marginWords, originOf, percent, plural, points, ratioWords } from './explain.js';
import { RHO, SHARED_DEFAULTS, type ErrorRateWindow, type SequentialDecision, type SequentialJudge, type SharedJudgeConfig } from './types.js';

export interface ErrorRateJudgeConfig extends SharedJudgeConfig {
  /** Absolute margin over stable's error rate (fraction); default 0.03. */
  margin?: number;
  /** Absolute cap on the canary's error rate (fraction); default 0.05; null for none. */
  cap?: number | null;
}

export const ERROR_RATE_DEFAULTS = { ...SHARED_DEFAULTS, margin: 0.03, cap: 0.05 } as const;

/**
 * Tests mixed within each restarted span: [multiple of the margin (or cap), prior weight]; a
 * multiple of 0 is the running estimate of the canary's own rate over the span, held at least at
 * the margin (or just above the cap): the composite alternative, so that evidence grows with
 * traffic for every canary beyond it, not only for one near a point alternative.
 */
const DIFFERENCE_TESTS = [
  [0, 0.22],
  [1, 0.25],
  [5 / 3, 0.15],
  [3, 0.08],
  [10, 0.04],
] as const;
const CAP_TESTS = [
  [0, 0.16],
  [1.5, 0.06],
  [3, 0.04],
] as const;
const DIFF = [0, 1, 2, 3, 4];
const CAP = [5, 6, 7];
/** Pseudo-requests the running estimate starts with, at the alternative's edge. */
const PRIOR_REQUESTS = 20;
/** Stable's rate before its first window, as one pseudo-request. */
const STABLE_PRIOR = 0.01;
/**
 * Stable errors a window (baseline included) from which stable's ρ speaks for the canary's wander
 * too. Below it the canary's own estimate counts as well; charging it always cost about a check of
 * detection at 10–50 req/s on the corpus's noise (scripts/detection-sim.ts) and bought no validity.
 */
const STABLE_SPEAKS = 5;
/** The running alternative to a cap starts just above it. */
const CAP_EDGE = 1.02;

// Figures kept per span: canary requests/errors, stable requests/errors, then the CMH sums, then
// the effective (dispersion-deflated) counts the likelihoods use.
const NC = 0;
const XC = 1;
const NS = 2;
const XS = 3;
const EXCESS = 4;
const WEIGHT = 5;
const VARIANCE = 6;
const PASS_VARIANCE = 7;
const ENC = 8;
const EXC = 9;
const ENS = 10;
const EXS = 11;
/** Then the span's own estimate of the canary's wander (span-wander.ts). */
const WANDER = 12;
const SUMS = WANDER + WANDER_SLOTS;
/** The canary's own wander estimate: one standard error, and 2 of its contributions' spread (see below). */
const CANARY_WANDER = { allowance: 1, spreadAllowance: 2.0 };

export interface ErrorRateJudgeState {
  mixture: ChangePointState;
  dispersion: DispersionState;
  /** Absent in states saved before the canary's own wander was learned: it starts afresh. */
  canaryDispersion?: DispersionState;
  lastCanaryRequests: number;
}

const smoothed = (events: number, requests: number) => (events + 0.5) / (requests + 1);

export function createErrorRateJudge(
  config: ErrorRateJudgeConfig = {},
  options: { state?: ErrorRateJudgeState; dispersion?: DispersionState } = {},
): SequentialJudge<ErrorRateWindow> {
  const margin = config.margin ?? ERROR_RATE_DEFAULTS.margin;
  const cap = config.cap === undefined ? ERROR_RATE_DEFAULTS.cap : config.cap;
  const alpha = config.alpha ?? ERROR_RATE_DEFAULTS.alpha;
  const split = alphaSplit(alpha, config.plannedSteps ?? SHARED_DEFAULTS.plannedSteps);
  const beta = config.beta ?? ERROR_RATE_DEFAULTS.beta;
  const minRequests = config.minRequests ?? SHARED_DEFAULTS.minRequests;
  checkFraction('margin', margin, 'an absolute error-rate margin like 0.03 (3 points)');
  if (cap !== null) checkFraction('cap', cap, 'a maximum error rate like 0.05 (5%)');
  checkFraction('alpha', alpha, 'a false-rollback probability like 0.01');
  checkFraction('beta', beta, 'a missed-regression probability like 0.05');

  const weights = [...DIFFERENCE_TESTS.map(([, w]) => w), ...CAP_TESTS.map(([, w]) => (cap === null ? 0 : w))];
  const mixture = createChangePointMixture(
    {
      testWeights: weights,
      sums: SUMS,
      plannedSteps: config.plannedSteps ?? SHARED_DEFAULTS.plannedSteps,
      plannedChecks: config.plannedChecks ?? SHARED_DEFAULTS.plannedChecks,
    },
    options.state?.mixture,
  );
  const dispersion = createDispersionEstimator(options.state?.dispersion ?? options.dispersion);
  // The canary's own estimate is judged one standard error above it, and at least 2 standard
  // errors of its per-window contributions' spread above their mean (dispersion.ts): at a few
  // errors a window the estimate often comes out near 0 by chance, and an allowance relative to
  // it vanishes with it. A canary at the null's boundary over a zero-error stable was rolled back
  // 2.1% of the time at alpha 0.5% with one estimate for the whole rollout and no spread allowance
  // (0.69% at 1 spread error, 0.30% at 1.5). Each span now estimates it for itself (span-wander.ts),
  // leaving out the difference at its own onset; the evidence gathers on the span that starts at
  // a burst, whose own difference is the one left out, and 1.5 spread errors left that boundary at
  // 0.45%, 2 at 0.29% (scripts/wander-validity-sim.ts, sequential-wander-validity.test.ts).
  const canaryDispersion = createDispersionEstimator(options.state?.canaryDispersion, CANARY_WANDER.allowance, CANARY_WANDER.spreadAllowance);
  let lastCanaryRequests = options.state?.lastCanaryRequests ?? 0;
  const nullShift = margin / 2;

  /** Each span's evidence per test: its numerator less the null's maximum over the span (composite.ts). */
  const net = (span: SpanState): number[] => {
    const c = span.sums;
    const [enc, exc, ens, exs] = [c[ENC] as number, c[EXC] as number, c[ENS] as number, c[EXS] as number];
    const diffNull = differenceNullLogLik(exc, enc, exs, ens, nullShift);
    const capNull = cap === null ? 0 : capNullLogLik(exc, enc, cap);
    return span.logs.map((log, t) => (t < DIFFERENCE_TESTS.length ? log - diffNull : log - capNull));
  };

  return {
    snapshot: () =>
      ({ mixture: mixture.state(), dispersion: dispersion.state(), canaryDispersion: canaryDispersion.state(), lastCanaryRequests }) satisfies ErrorRateJudgeState,
    observe(window) {
      const before = mixture.view().whole;
      mixture.begin(window.step ?? 0, window.startedAt);
      const nc = sanitize(window.canary.requests);
      const ns = sanitize(window.stable.requests);
      const xc = Math.min(sanitize(window.canary.errors), nc);
      const xs = Math.min(sanitize(window.stable.errors), ns);
      lastCanaryRequests = nc;
      const rho = dispersion.rho();
      // A stable with (almost) no errors shows no wander and cannot speak for the canary's; then
      // each span judges the canary with its own estimate of the canary's wander (span-wander.ts).
      const quiet = dispersion.errorsPerWindow() < STABLE_SPEAKS;
      const rhoCanary = quiet ? Math.max(rho, canaryDispersion.rho()) : rho;
      const beforeWander = canaryDispersion.moments();
      const lastCanary = canaryDispersion.last();
      const spanPhi = (span: SpanState) =>
        1 + (quiet ? Math.max(rho, spanWanderRho(span, WANDER, beforeWander, CANARY_WANDER, () => canaryDispersion.rho())) : rho) * nc;
      const sums = new Array<number>(SUMS).fill(0);
      [sums[NC], sums[XC], sums[NS], sums[XS]] = [nc, xc, ns, xs];
      let increments: (span: SpanState) => number[] = () => weights.map(() => 0);
      const spanSums = (span: SpanState): number[] => {
        const own = [...sums];
        if (nc > 0 && ns > 0) {
          const phi = spanPhi(span);
          [own[ENC], own[EXC]] = [nc / phi, xc / phi];
        }
        const spanCanary = { events: span.sums[XC] ?? 0, requests: span.sums[NC] ?? 0 };
        own.splice(WANDER, WANDER_SLOTS, ...spanWanderIncrement(span, spanCanary, { events: xc, requests: nc }, lastCanary, beforeWander));
        return own;
      };
      if (nc > 0 && ns > 0) {
        const n = nc + ns;
        const x = xc + xs;
        const share = nc / n;
        // Effective counts: each side's window divided by its variance inflation 1 + ρ·n (the
        // canary's by its span's, in spanSums; these are the rollout's and the step's figures).
        const phiC = 1 + rhoCanary * nc;
        const phiS = 1 + rho * ns;
        const [enc, exc, ens, exs] = [nc / phiC, xc / phiC, ns / phiS, xs / phiS];
        [sums[ENC], sums[EXC], sums[ENS], sums[EXS]] = [enc, exc, ens, exs];
        // Stable's rate before this window (predictable): the numerator's plug-in for stable.
        const stableRate = Math.min(0.99, shrunkRate(before[EXS] as number, before[ENS] as number, STABLE_PRIOR, 1));
        const stableLik = binomialLogLik(exs, ens, stableRate);
        increments = (span) => {
          const phi = spanPhi(span);
          const [spanEnc, spanExc] = [nc / phi, xc / phi];
          const spanRate = (edge: number) => Math.max(edge, shrunkRate(span.sums[EXC] as number, span.sums[ENC] as number, edge, PRIOR_REQUESTS));
          const diffEdge = Math.min(0.999, stableRate + margin);
          const out = DIFFERENCE_TESTS.map(([multiple]) => {
            const pc = multiple === 0 ? spanRate(diffEdge) : Math.min(0.999, stableRate + multiple * margin);
            return binomialLogLik(spanExc, spanEnc, pc) + stableLik;
          });
          for (const [multiple] of CAP_TESTS) {
            const capEdge = Math.min(0.999, (cap ?? 0.5) * CAP_EDGE);
            const pc = multiple === 0 ? spanRate(capEdge) : Math.min(0.999, (cap ?? 0.5) * multiple);
            out.push(cap === null ? 0 : binomialLogLik(spanExc, spanEnc, pc));
          }
          return out;
        };
        // The Cochran–Mantel–Haenszel risk difference and its variance, at the step's rates.
        const step = mixture.view().step;
        const pc = smoothed((step[XC] as number) + xc, (step[NC] as number) + nc);
        const ps = smoothed((step[XS] as number) + xs, (step[NS] as number) + ns);
        const sideVar = (rate: number, requests: number, r: number) => requests * rate * (1 - rate) * (1 + r * requests);
        sums[EXCESS] = xc - share * x;
        sums[WEIGHT] = (nc * ns) / n;
        sums[VARIANCE] = (1 - share) ** 2 * sideVar(pc, nc, rhoCanary) + share ** 2 * sideVar(ps, ns, rho);
        sums[PASS_VARIANCE] = (1 - share) ** 2 * sideVar(Math.min(0.9999, Math.max(pc, ps + margin)), nc, rhoCanary) + share ** 2 * sideVar(ps, ns, rho);
      }
      mixture.add(increments, sums, net, spanSums);
      dispersion.addStable(xs, ns);
      canaryDispersion.addStable(xc, nc);
      return assess(rho);
    },
  };

  function assess(rho: number): SequentialDecision {
    const state = mixture.view();
    const whole = state.whole;
    const step = state.step;
    const stepSpan = mixture.stepSpan();
    const ev = mixture.evidence();
    const evidence = Math.exp(Math.min(700, ev.log));
    const threshold = villeLogThreshold(split.breach);
    const estimate = (whole[WEIGHT] as number) > 0 ? (whole[EXCESS] as number) / (whole[WEIGHT] as number) : 0;
    const radius = (level: number, variance: number) =>
      (whole[WEIGHT] as number) > 0 ? normalMixtureRadius(variance, RHO, level) / (whole[WEIGHT] as number) : 1;
    const range = radius(alpha, whole[VARIANCE] as number);
    // Passing rests on this step's windows alone: a bound over the rollout let the healthy checks
    // before a regression's onset pull it under the margin, so a step at +3 points passed on proof.
    // Restarted at every step, the (1 − β) bound is time-uniform within it: P(a step whose canary
    // is at the alternative throughout passes on proof) ≤ β, for each step.
    const stepWeight = step[WEIGHT] as number;
    const stepEstimate = stepWeight > 0 ? (step[EXCESS] as number) / stepWeight : 0;
    const passBound = stepWeight > 0 ? Math.min(1, stepEstimate + normalMixtureRadius(step[PASS_VARIANCE] as number, RHO, beta) / stepWeight) : 1;
    const stepCanary = (step[NC] as number) > 0 ? (step[XC] as number) / (step[NC] as number) : 0;
    const stepStable = (step[NS] as number) > 0 ? (step[XS] as number) / (step[NS] as number) : 0;
    const base = {
      canaryRate: stepCanary,
      stableRate: stepStable,
      difference: { estimate, lower: Math.max(-1, estimate - range), upper: Math.min(1, estimate + range) },
      margin,
      evidence,
      canaryRequests: step[NC] as number,
      canaryEvents: step[XC] as number,
      stableRequests: step[NS] as number,
      stableEvents: step[XS] as number,
      dispersion: rho,
    };
    const rates = `canary errors ${percent(stepCanary)} vs stable ${percent(stepStable)} this step (${plural(step[NC] as number, 'canary request')})`;
    const rangeWords = `difference over the rollout ${points(estimate)}, ${confidenceWords(1 - alpha)} range ${points(base.difference.lower)} to ${points(base.difference.upper)}`;

    if ((whole[NC] as number) <= 0 || (whole[NS] as number) <= 0) {
      const explanation = (whole[NC] as number) <= 0 ? 'no canary requests yet: nothing to judge' : 'no stable requests to compare with: nothing to judge';
      return { ...base, decision: 'inconclusive', confidence: 0, adverse: null, explanation };
    }

    if (ev.log >= threshold) {
      const byDifference = ev.logOf(DIFF) >= threshold;
      const decisive = byDifference ? bestOf(DIFF) : ev;
      const origin = evidenceOriginWords(originOf(decisive.span));
      const c = decisive.span.sums;
      const canary = (c[NC] as number) > 0 ? (c[XC] as number) / (c[NC] as number) : 0;
      const stable = (c[NS] as number) > 0 ? (c[XS] as number) / (c[NS] as number) : 0;
      const confidence = `with ${confidenceWords(1 - alpha)} confidence (evidence ${ratioWords(evidence)} for a regression, rollback at ${ratioWords(1 / split.breach)})`;
      // "More than the margin" only when the estimate is; otherwise what the evidence rules out.
      const worse = canary - stable;
      const explanation = byDifference
        ? worse > margin
          ? `canary errors ${percent(canary)} vs stable ${percent(stable)} ${origin}: worse than stable by more than the ${marginWords(margin)} margin allows, ${confidence}`
          : `canary errors ${percent(canary)} vs stable ${percent(stable)} ${origin}: ${points(worse)}, more than the ${marginWords(nullShift)} worse that the policy lets pass, ${confidence}`
        : `canary errors ${percent(canary)} ${origin}: above the ${percent(cap ?? 0)} cap${stable > (cap ?? 1) ? ` (stable is above it too, at ${percent(stable)})` : ` (stable ${percent(stable)})`}, ${confidence}`;
      // A rollback shows the figures of the checks it rests on, the ones its explanation names.
      const figures = { canaryRate: canary, stableRate: stable, canaryRequests: c[NC] as number, canaryEvents: c[XC] as number, stableRequests: c[NS] as number, stableEvents: c[XS] as number };
      return { ...base, ...figures, decision: 'fail', confidence: 1 - 1 / evidence, adverse: 'rolled back', explanation };
    }

    // "Leaning" needs a likelihood ratio of LEANING:1 over this step (from any of its checks on,
    // see leanLogEvidence): at 3 canary requests a minute one unlucky error must not hold a step,
    // but 9% of 98 requests must. An estimate above the cap holds the step (see aboveCap).
    const stepN = step[NC] as number;
    const capAbove = cap !== null && aboveCap(stepCanary, stepN, cap, minRequests);
    const stepLog = leanLogEvidence(state.spans, stepSpan, DIFF, weights);
    const leaning = stepLog >= Math.log(LEANING);
    const held = capAbove
      ? `canary errors ${percent(stepCanary)} this step, above the ${percent(cap ?? 0)} cap`
      : leaning
        ? `this step's errors lean towards a regression (canary ${percent(stepCanary)} vs stable ${percent(stepStable)}, ${ratioWords(Math.exp(stepLog))} for a regression over this step)`
        : null;
    const holdEnded = holdEnds(config.stepChecks, state.currentStep ?? 0, state.windows - state.stepFirstWindow);
    const adverse = holdEnded ? holdEndAdverse(Math.max(stepLog, cap === null ? -Infinity : leanLogEvidence(state.spans, stepSpan, CAP, weights)), split.holdPerStep) : held;
    // Past the hold's end, weak adverse evidence keeps the step held rather than rolling it back.
    const holding = holdEnded && adverse === null ? held : null;

    const short = Math.max(0, minRequests - (step[NC] as number));
    if (passBound < margin && short <= 0 && adverse === null && holding === null) {
      return {
        ...base,
        decision: 'pass',
        confidence: 1 - beta,
        adverse,
        explanation: `${rates}: not worse by the ${marginWords(margin)} margin, with ${confidenceWords(1 - beta)} confidence (difference at most ${points(passBound)} over this step's ${plural(step[NC] as number, 'canary request')})`,
      };
    }

    // Say what blocks the decision, the nearest first.
    const blockers: string[] = [];
    let more: number | undefined;
    if (adverse) blockers.push(`${adverse}; rollback needs evidence ${ratioWords(1 / split.breach)}, now ${ratioWords(evidence)}`);
    if (holding) blockers.push(`${holding}; held past its hold until the evidence decides (rollback at ${ratioWords(1 / split.breach)}, now ${ratioWords(evidence)})`);
    if (short > 0) blockers.push(`the step has ${plural(step[NC] as number, 'canary request')}, ${count(minRequests)} are needed to pass it`);
    if (passBound >= margin && stepEstimate < margin) {
      const have = step[NC] as number;
      const width = passBound - stepEstimate;
      const gap = margin - stepEstimate;
      more = Math.max(0, Math.ceil(have * (width / gap) ** 2 - have));
      blockers.push(`passing needs the bound that rules out a ${marginWords(margin)} regression (now ${points(passBound)}) below the margin: about ${plural(more, 'more canary request')}${moreChecks(more, lastCanaryRequests)}`);
    }
    if (blockers.length === 0) blockers.push(`the difference sits between half the margin and the margin, where either decision is acceptable`);
    return {
      ...base,
      decision: 'inconclusive',
      confidence: Math.max(0, 1 - 1 / evidence),
      adverse,
      holding,
      ...(more === undefined ? {} : { moreRequestsNeeded: more }),
      explanation: `${rates}: not settled (${rangeWords}); waiting on: ${blockers.join('; ')}`,
    };
  }

  function bestOf(tests: readonly number[]) {
    let best = mixture.view().spans[0];
    let bestLog = -Infinity;
    for (const sp of mixture.view().spans) {
      for (const t of tests) {
        const log = sp.logWeight + Math.log(weights[t] as number) + (spanLogs(sp)[t] as number);
        if (log > bestLog) {
          bestLog = log;
          best = sp;
        }
      }
    }
    return { span: best as NonNullable<typeof best> };
  }
}

function sanitize(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0;
}

function checkFraction(field: string, value: number, expected: string): void {
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw invalidInput(`sequential judge: "${field}" must be between 0 and 1 exclusive, got ${String(value)}; expected ${expected}`);
  }
}
