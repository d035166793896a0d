// The sequential latency judge: tests the canary's quantile (P95 by default) itself, as the policy
// states it — against `ratio` × stable's same quantile, and against `limit` as an absolute cap
// that holds whatever stable does — from histogram bucket counts per window, with the same
// anytime-valid machinery as the error-rate judge (change-point.ts, dispersion.ts).
//
// A quantile is not a count, but "the canary's P95 is above x" is: it holds exactly when more than
// 5% of canary requests are slower than x. When x lies inside a bucket, the count above it is known
// only between two bounds (bucket-bounds.ts): evidence for a rollback rests on the lower bound,
// passing on the upper, and a bucket is split only by a log-normal fitted to all of the canary's
// buckets over the step whose fit is checked. When neither decides, the check says so.
//
// Ratio — x = ratio × stable's P95 over the rollout so far (stable's P95 over the baseline look-back
//   until stable has served enough requests). H0: at most 5% of canary requests slower than x
//   (canary P95 ≤ 1.5× stable's); H1: at least 10% (and 30%), which a lognormal latency
//   (σ ≈ 0.5) reaches at about 1.8× stable's P95. A 1.3× canary is under H0.
// Cap — x = limit. H0: at most 5% slower than the limit (P95 ≤ 2 s); H1: at least 7.5% (and 30%).
// Each window's one-sample likelihood ratio is divided by its variance inflation 1 + ρ·n, with ρ
// learned from stable's own window-to-window variation of its share above its P95, and from the
// canary's own share above the line (canary-wander.ts): the larger is charged.

import { invalidInput } from '../../errors.js';
import { createChangePointMixture, spanLogs, type ChangePointState } from './change-point.js';
import { createDispersionEstimator, type DispersionState } from './dispersion.js';
import { createCanaryWander, type CanaryWanderState } from './canary-wander.js';
import { binomialLogLikelihoodRatio, normalMixtureRadius, villeLogThreshold } from './evidence.js';
import { aboveCap, holdEndAdverse, leanLogEvidence, LEANING, moreChecks } from './step-evidence.js';
import { alphaSplit, holdEnds } from './hold.js';
import { confidenceWords, count, evidenceOriginWords, originOf, percent, plural, ratioWords } from './explain.js';
import { addBuckets, bucketsOf, normalizeBuckets, smoothCountAbove as countAbove, smoothQuantile as histogramQuantile, totalCount, type Bucket } from './histogram.js';
import { countsAbove, fitAround, fitLognormal, lognormalQuantile, type AboveCounts, type LognormalFit } from './bucket-bounds.js';
import { probit } from './fit-uncertainty.js';
import { RHO, SHARED_DEFAULTS, type SequentialDecision, type SequentialJudge, type SharedJudgeConfig } from './types.js';

export interface LatencyJudgeConfig extends SharedJudgeConfig {
  /** Canary's quantile may not exceed this multiple of stable's; default 1.5. */
  ratio?: number;
  /** Absolute cap on the canary's quantile, in seconds (e.g. 2). */
  limit?: number;
  /** The quantile judged; default 0.95. */
  quantile?: number;
  /** Stable's buckets over the look-back before the rollout: its quantile until the rollout's own is settled. */
  baseline?: readonly Bucket[];
}

export interface LatencyWindow {
  canary: { buckets: readonly Bucket[] };
  stable: { buckets: readonly Bucket[] };
  step?: number;
  /** When the window's counts begin (check time minus the window): explanations name it. */
  startedAt?: Date;
}

export interface LatencyDecision extends SequentialDecision {
  /** Canary's quantile over the current step; stable's reference quantile; NaN without requests. */
  canaryQuantile: number;
  stableQuantile: number;
  /** The line the canary's quantile is held to now: min(ratio × stable's, limit), seconds. */
  limitSeconds: number;
}

export const LATENCY_DEFAULTS = { ...SHARED_DEFAULTS, ratio: 1.5, quantile: 0.95 } as const;

/** A step's within-bucket fit is redone when its canary requests have grown by this factor. */
const REFIT = 1.1;

/** Stable requests the rollout must have seen before its own quantile replaces the baseline's. */
const REFERENCE_REQUESTS = 200;

const RATIO_TESTS = [
  [2, 0.45],
  [6, 0.15],
] as const;
const CAP_TESTS = [
  [1.5, 0.3],
  [6, 0.1],
] as const;
const RATIO = [0, 1];
const CAP = [2, 3];

// Figures per span: canary requests, canary requests above the ratio line, above the cap, and
// the variances (at the alternatives) for the pass bounds.
const NC = 0;
const ABOVE_RATIO = 1;
const ABOVE_CAP = 2;
const VAR_RATIO = 3;
const VAR_CAP = 4;
// Requests possibly slower than each line (the upper bound, or the checked model's split): what passing rests on.
const UP_RATIO = 5;
const UP_CAP = 6;
const SUMS = 7;

export interface LatencyJudgeState {
  mixture: ChangePointState;
  dispersion: DispersionState;
  /**
   * The canary's own wander (canary-wander.ts). Absent in states saved before it was learned this
   * way (they held `canaryDispersion`, now ignored): it starts afresh, at its first-window floor.
   */
  canaryWander?: CanaryWanderState;
  /** Bucket bounds and counts; the +Inf bound as the string "+Inf", which JSON can hold. */
  stable: Array<[number | '+Inf', number]>;
  stepCanary: Array<[number | '+Inf', number]>;
  lastCanaryRequests: number;
  step: number | null;
  /** The last within-bucket fit, its step and the step's canary requests it was fitted to. */
  fit?: (LognormalFit & { step: number; total: number }) | null;
}

export function createLatencyJudge(config: LatencyJudgeConfig, options: { state?: LatencyJudgeState } = {}): SequentialJudge<LatencyWindow, LatencyDecision> {
  const ratio = config.ratio ?? LATENCY_DEFAULTS.ratio;
  if (!(ratio > 1)) throw invalidInput(`latency judge: "ratio" must be above 1 (like 1.5), got ${String(ratio)}`);
  const limit = config.limit;
  if (limit !== undefined && !(limit > 0 && Number.isFinite(limit))) {
    throw invalidInput(`latency judge: "limit" must be a positive number of seconds, got ${String(limit)}`);
  }
  const quantile = config.quantile ?? LATENCY_DEFAULTS.quantile;
  const alpha = config.alpha ?? LATENCY_DEFAULTS.alpha;
  const split = alphaSplit(alpha, config.plannedSteps ?? SHARED_DEFAULTS.plannedSteps);
  const beta = config.beta ?? LATENCY_DEFAULTS.beta;
  const minRequests = config.minRequests ?? SHARED_DEFAULTS.minRequests;
  const tail = 1 - quantile;
  // A within-bucket split enters rollback evidence at its low end and passing at its high end, by
  // the fit's parameter uncertainty at the level each decision is made at.
  const zRollback = probit(1 - split.breach);
  const zPass = probit(1 - beta);
  const weights = [...RATIO_TESTS.map(([, w]) => w), ...CAP_TESTS.map(([, w]) => (limit === undefined ? 0 : w))];
  const mixture = createChangePointMixture(
    {
      testWeights: weights,
      sums: SUMS,
      plannedSteps: config.plannedSteps ?? SHARED_DEFAULTS.plannedSteps,
      plannedChecks: config.plannedChecks ?? SHARED_DEFAULTS.plannedChecks,
    },
    options.state?.mixture,
  );
  const dispersion = createDispersionEstimator(options.state?.dispersion);
  // The canary's latency wanders on its own (a slow pod, a cold cache on the new version), and
  // stable's wander, at its own P95, cannot speak for it: a canary at 1.3× stable's latency, inside
  // the policy, whose median wandered by 20% from scrape to scrape was rolled back 57% of the time
  // at alpha 0.5% when only stable's wander was charged. canary-wander.ts learns it from the
  // canary's share above the line without taking a regression's onset for wander.
  const canaryWander = createCanaryWander(options.state?.canaryWander);
  const stable = decode(options.state?.stable);
  let stepCanary = decode(options.state?.stepCanary);
  let lastCanaryRequests = options.state?.lastCanaryRequests ?? 0;
  let step: number | null = options.state?.step ?? null;
  const baseline = normalizeBuckets(config.baseline ?? []);
  const label = `P${Number((quantile * 100).toFixed(1))}`;

  const reference = (): number => {
    const own = bucketsOf(stable);
    if (totalCount(normalizeBuckets(own)) >= REFERENCE_REQUESTS || baseline.length === 0) return histogramQuantile(quantile, own);
    const merged = new Map(stable);
    addBuckets(merged, baseline);
    return histogramQuantile(quantile, bucketsOf(merged));
  };

  /** What the histogram could not decide at the last window, in words (a line inside a bucket, no fitting model). */
  let resolution: string[] = [];
  /**
   * The last fit: reused while the step's canary requests grow by less than REFIT (the shape of
   * thousands of requests does not change with a few more), and the next fit's start.
   */
  let lastFit: (LognormalFit & { step: number; total: number }) | null = options.state?.fit ?? null;
  const stepFit = (buckets: Bucket[], step: number): LognormalFit | null => {
    const total = totalCount(normalizeBuckets(buckets));
    if (lastFit && lastFit.step === step && total <= lastFit.total * REFIT) return lastFit;
    const fit = fitLognormal(buckets, lastFit?.step === step ? lastFit : null);
    lastFit = fit ? { ...fit, step, total } : null;
    return fit;
  };
  const noteResolution = (c: AboveCounts, x: number, fit: LognormalFit | null, n: number, passBar: number) => {
    if (c.edges[0] === c.edges[1] || c.upper <= c.lower) return;
    if (c.modelLow !== null && c.modelHigh !== null) {
      // A model that splits the bucket, but too uncertain in its parameters to say either way:
      // its range holds both a share the null allows and one that blocks passing.
      if (!(c.modelLow <= tail * n && c.modelHigh >= passBar * n)) return;
      resolution.push(
        `${seconds(x)} lies inside the histogram's ${seconds(c.edges[0])}–${seconds(c.edges[1])} bucket; the log-normal fitted to the canary's buckets puts between ${count(Math.round(c.modelLow))} and ${count(Math.round(c.modelHigh))} of this window's canary requests above it, given the uncertainty of its parameters`,
      );
      return;
    }
    const why = fit === null ? 'too few buckets for a within-bucket model' : `a log-normal does not fit the canary's buckets (off by ${percent(fit.deviation)} at an edge)`;
    resolution.push(
      `${seconds(x)} lies inside the histogram's ${seconds(c.edges[0])}–${seconds(c.edges[1])} bucket, where between ${count(Math.round(c.lower))} and ${count(Math.round(c.upper))} of this window's canary requests are slower than it (${why})`,
    );
  };

  /** What may split the bucket holding x: the step's global fit if it passed, else a checked fit around x. */
  const splitter = (fit: LognormalFit | null, x: number): LognormalFit | null => (fit?.ok ? fit : fitAround(bucketsOf(stepCanary), x));

  return {
    snapshot: () =>
      ({
        mixture: mixture.state(),
        dispersion: dispersion.state(),
        canaryWander: canaryWander.state(),
        stable: encode(stable),
        stepCanary: encode(stepCanary),
        lastCanaryRequests,
        step,
        fit: lastFit,
      }) satisfies LatencyJudgeState,
    observe(window) {
      const canary = normalizeBuckets(window.canary.buckets);
      const stableNow = normalizeBuckets(window.stable.buckets);
      const windowStep = window.step ?? 0;
      if (windowStep !== step) {
        step = windowStep;
        stepCanary = new Map();
      }
      mixture.begin(windowStep, window.startedAt);
      addBuckets(stable, stableNow);
      addBuckets(stepCanary, canary);
      const qs = reference();
      const line = ratio * qs;
      const nc = totalCount(canary);
      const ns = totalCount(stableNow);
      lastCanaryRequests = nc;
      // Judged with the larger: stable's wander still guards a canary whose own estimate came out low.
      const rho = Math.max(dispersion.rho(), canaryWander.rho(nc));
      const phi = 1 + rho * nc;
      const increments = weights.map(() => 0);
      const sums = new Array<number>(SUMS).fill(0);
      sums[NC] = nc;
      // The canary's latency shape over the step: it may split the bucket holding a line only if it fits.
      const fit = stepFit(bucketsOf(stepCanary), windowStep);
      resolution = [];
      const variance = (p: number) => nc * p * (1 - p) * phi;
      if (nc > 0 && Number.isFinite(line)) {
        const c = countsAbove(canary, line, splitter(fit, line), zRollback, zPass);
        const above = Math.min(nc, c.modelLow ?? c.lower);
        sums[ABOVE_RATIO] = above;
        sums[UP_RATIO] = Math.min(nc, c.modelHigh ?? c.upper);
        noteResolution(c, line, splitter(fit, line) ?? fit, nc, 2 * tail);
        sums[VAR_RATIO] = variance(2 * tail);
        RATIO_TESTS.forEach(([multiple], t) => {
          increments[t] = binomialLogLikelihoodRatio(above, nc, tail, Math.min(0.999, tail * multiple)) / phi;
        });
      }
      if (nc > 0 && limit !== undefined) {
        const c = countsAbove(canary, limit, splitter(fit, limit), zRollback, zPass);
        const above = Math.min(nc, c.modelLow ?? c.lower);
        sums[ABOVE_CAP] = above;
        sums[UP_CAP] = Math.min(nc, c.modelHigh ?? c.upper);
        noteResolution(c, limit, splitter(fit, limit) ?? fit, nc, 1.5 * tail);
        sums[VAR_CAP] = variance(1.5 * tail);
        CAP_TESTS.forEach(([multiple], t) => {
          increments[RATIO_TESTS.length + t] = binomialLogLikelihoodRatio(above, nc, tail, Math.min(0.999, tail * multiple)) / phi;
        });
      }
      mixture.add(increments, sums);
      if (ns > 0 && Number.isFinite(qs)) dispersion.addStable(countAbove(stableNow, qs), ns);
      if (nc > 0 && Number.isFinite(line)) canaryWander.add(countAbove(canary, line), nc);
      return assess(qs, rho);
    },
  };

  function assess(qs: number, rho: number): LatencyDecision {
    const state = mixture.view();
    const whole = state.whole;
    const stepSums = state.step;
    const stepSpan = mixture.stepSpan();
    const ev = mixture.evidence();
    const evidence = Math.exp(Math.min(700, ev.log));
    const threshold = villeLogThreshold(split.breach);
    // The canary's quantile this step: the checked within-bucket model's when it fits, else the curve's.
    const fitted = lastFit?.ok && lastFit.step === step ? lognormalQuantile(lastFit, quantile) : null;
    const qc = fitted ?? histogramQuantile(quantile, bucketsOf(stepCanary));
    const ratioLine = ratio * qs;
    const limitSeconds = limit === undefined ? ratioLine : Number.isFinite(ratioLine) ? Math.min(ratioLine, limit) : limit;
    const wholeN = whole[NC] as number;
    const stepN = stepSums[NC] as number;
    const shareAbove = (sums: readonly number[], i: number) => ((sums[NC] as number) > 0 ? (sums[i] as number) / (sums[NC] as number) : 0);
    const base = {
      canaryRate: shareAbove(stepSums, ABOVE_RATIO),
      stableRate: tail,
      difference: { estimate: shareAbove(whole, ABOVE_RATIO) - tail, lower: -1, upper: 1 },
      margin: tail,
      evidence,
      canaryRequests: stepN,
      canaryEvents: stepSums[ABOVE_RATIO] as number,
      stableRequests: totalCount(normalizeBuckets(bucketsOf(stable))),
      stableEvents: 0,
      dispersion: rho,
      canaryQuantile: qc,
      stableQuantile: qs,
      limitSeconds,
    };
    const stableAboveCap = limit !== undefined && Number.isFinite(qs) && qs > limit;
    const stableWords = `stable's ${seconds(qs)}${stableAboveCap ? `, above the ${seconds(limit ?? 0)} cap too` : ''}`;
    const figures = `canary ${label} ${seconds(qc)} this step vs ${stableWords}`;

    if (wholeN <= 0) return { ...base, decision: 'inconclusive', confidence: 0, adverse: null, explanation: 'no canary requests yet: nothing to judge' };
    if (!Number.isFinite(qs) && limit === undefined) {
      return { ...base, decision: 'inconclusive', confidence: 0, adverse: null, explanation: 'no stable latency to compare with: nothing to judge' };
    }

    const confidence = `with ${confidenceWords(1 - alpha)} confidence (evidence ${ratioWords(evidence)} for a regression, rollback at ${ratioWords(1 / split.breach)})`;
    if (ev.log >= threshold) {
      const byCap = limit !== undefined && ev.logOf(CAP) >= threshold;
      const span = byCap ? bestSpan(CAP) : bestSpan(RATIO);
      const origin = evidenceOriginWords(originOf(span));
      const explanation = byCap
        ? `canary ${label} above the ${seconds(limit ?? 0)} cap ${origin}: ${percent(shareAbove(span.sums, ABOVE_CAP))} of canary requests slower than ${seconds(limit ?? 0)}, more than ${percent(tail)} (${figures}), ${confidence}`
        : `canary ${label} above ${ratio}× stable's ${origin}: ${percent(shareAbove(span.sums, ABOVE_RATIO))} of canary requests slower than ${seconds(ratioLine)} (${ratio}× stable's ${label}), more than ${percent(tail)} (${figures}), ${confidence}`;
      return { ...base, decision: 'fail', confidence: 1 - 1 / evidence, adverse: 'rolled back', explanation };
    }

    const capShare = shareAbove(stepSums, ABOVE_CAP);
    const capAbove = limit !== undefined && aboveCap(capShare, stepN, tail, minRequests);
    const stepLog = Math.max(leanLogEvidence(state.spans, stepSpan, RATIO, weights), limit === undefined ? -Infinity : leanLogEvidence(state.spans, stepSpan, CAP, weights));
    const leaning = stepLog >= Math.log(LEANING);
    const held = capAbove
      ? `canary ${label} ${seconds(qc)} this step, above the ${seconds(limit ?? 0)} cap`
      : leaning
        ? `this step's latency leans towards a regression (${figures}, line ${seconds(limitSeconds)}, ${ratioWords(Math.exp(stepLog))} for a regression over this step)`
        : null;
    const holdEnded = holdEnds(config.stepChecks, state.currentStep ?? 0, state.windows - state.stepFirstWindow);
    const adverse = holdEnded ? holdEndAdverse(stepLog, split.holdPerStep) : held;
    // Past the hold's end, weak adverse evidence keeps the step held rather than rolling it back.
    const holding = holdEnded && adverse === null ? held : null;

    // Passing rests on this step's windows alone (as the error-rate judge's does): restarted at each
    // step, the (1 − β) bound keeps P(a step at the alternative throughout passes on proof) ≤ β.
    const bound = (i: number, v: number) => (stepN > 0 ? ((stepSums[i] as number) + normalMixtureRadius(stepSums[v] as number, RHO, beta)) / stepN : 1);
    const ratioBound = Number.isFinite(ratioLine) ? bound(UP_RATIO, VAR_RATIO) : 0;
    const capBound = limit === undefined ? 0 : bound(UP_CAP, VAR_CAP);
    const short = Math.max(0, minRequests - stepN);
    const ratioOk = ratioBound < 2 * tail;
    const capOk = capBound < 1.5 * tail;
    const what = `${label} not above ${ratio}× stable's (${seconds(ratioLine)})${limit === undefined ? '' : ` nor the ${seconds(limit)} cap`}`;
    if (ratioOk && capOk && short <= 0 && adverse === null && holding === null) {
      return {
        ...base,
        decision: 'pass',
        confidence: 1 - beta,
        adverse,
        explanation: `${figures}: ${what}, with ${confidenceWords(1 - beta)} confidence (over this step's ${plural(stepN, 'canary request')})`,
      };
    }
    const blockers: string[] = [];
    let more: number | undefined;
    if (adverse) blockers.push(`${adverse}; rollback needs evidence ${ratioWords(1 / split.breach)}, now ${ratioWords(evidence)}`);
    if (holding) blockers.push(`${holding}; held past its hold until the evidence decides (rollback at ${ratioWords(1 / split.breach)}, now ${ratioWords(evidence)})`);
    if (short > 0) blockers.push(`the step has ${plural(stepN, 'canary request')}, ${count(minRequests)} are needed to pass it`);
    if (!ratioOk || !capOk) {
      const [share, bar, b] = !ratioOk ? [shareAbove(stepSums, UP_RATIO), 2 * tail, ratioBound] : [shareAbove(stepSums, UP_CAP), 1.5 * tail, capBound];
      if (share < bar) {
        more = Math.max(0, Math.ceil(stepN * ((b - share) / (bar - share)) ** 2 - stepN));
        blockers.push(`passing needs fewer than ${percent(bar)} of canary requests provably slower than the line (now up to ${percent(b)}): about ${plural(more, 'more canary request')}${moreChecks(more, lastCanaryRequests)}`);
      }
    }
    if (resolution.length > 0) blockers.push(`the histogram cannot decide: ${resolution.join('; ')}`);
    if (blockers.length === 0) blockers.push(`the canary's ${label} sits near the line, where either decision is acceptable`);
    return {
      ...base,
      decision: 'inconclusive',
      confidence: Math.max(0, 1 - 1 / evidence),
      adverse,
      holding,
      ...(more === undefined ? {} : { moreRequestsNeeded: more }),
      explanation: `${figures} (${plural(stepN, 'canary request')}): not settled; waiting on: ${blockers.join('; ')}`,
    };
  }

  function bestSpan(tests: readonly number[]) {
    const spans = mixture.view().spans;
    let best = spans[0];
    let bestLog = -Infinity;
    for (const sp of spans) {
      for (const t of tests) {
        const log = sp.logWeight + Math.log(weights[t] as number) + (spanLogs(sp)[t] as number);
        if (log > bestLog) {
          bestLog = log;
          best = sp;
        }
      }
    }
    return best as NonNullable<typeof best>;
  }
}

function encode(map: ReadonlyMap<number, number>): Array<[number | '+Inf', number]> {
  return [...map.entries()].map(([le, c]) => [Number.isFinite(le) ? le : '+Inf', c]);
}

function decode(entries: ReadonlyArray<readonly [number | '+Inf', number]> | undefined): Map<number, number> {
  return new Map((entries ?? []).map(([le, c]) => [le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), c]));
}

function seconds(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${Number(value.toFixed(2))} s`;
}
