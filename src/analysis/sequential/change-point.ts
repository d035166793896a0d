// Evidence for a regression that may begin at any check, as one test supermartingale.
//
// A regression may begin at any minute — at a step, or in the middle of one when a bad pod
// starts, a cache expires or a dependency degrades. A likelihood ratio that began earlier carries
// the healthy minutes' (negative) evidence and must first work it off (Lorden, Annals of
// Mathematical Statistics 1971). So the evidence is a mixture over change points, Σ_k w_k·M_t^(k),
// where M^(k) is the likelihood ratio restarted at window k. Each M^(k) is a test
// supermartingale under the null, the weights are fixed before window k is seen and sum to at
// most one, so the mixture is one too, and Ville's inequality keeps P(ever rolling back a canary
// the null describes) ≤ α over the whole rollout, however long it is held (Shiryaev 1963;
// Roberts, Technometrics 1966; Shin, Ramdas & Rinaldo, "E-detectors", NEJSDS 2024).
//
// Within each restarted ratio the judge mixes several tests (alternatives, and several
// hypotheses such as "worse than stable by the margin" and "above the cap"), each with a prior
// weight (Robbins 1970): a jump far beyond the margin counts for what it is within one window.
//
// The weights (changePointWeight): half on the planned step starts, where the canary's share of
// traffic changes; half on every window by a horizon-scaled 1/(k(k+1)) sequence, nearly flat over
// the planned checks and decaying after them, so that a held rollout never runs out of weight.
//
// The state is plain data, so a rollout resumed after a restart continues the same evidence.

import { logSumExp } from './evidence.js';

export interface SpanState {
  /** 0-based index of the span's first window, its step, and its place in that step. */
  window: number;
  step: number;
  windowInStep: number;
  startedAt?: string;
  windows: number;
  /** log of the span's prior weight. */
  logWeight: number;
  /** Log likelihood ratio per test, from the span's first window to now. */
  logs: number[];
  /** Additive figures the judge keeps per span (counts, sums for estimates). */
  sums: number[];
  /**
   * Log evidence per test once the judge's denominator is taken off (composite.ts): the
   * numerator's log likelihood minus the null's maximum over the span. Absent: `logs` is the evidence.
   */
  net?: number[];
}

/** The span's log evidence per test: net of the composite null when the judge sets it. */
export function spanLogs(span: SpanState): readonly number[] {
  return span.net ?? span.logs;
}

/**
 * Spans kept at most. Every step start is kept, then the most recent windows: dropping a
 * non-negative term from the mixture only lowers it, so Ville's bound still holds, and the state
 * (the rollout record's `judge`) stays the same size however long a rollout runs.
 */
export const MAX_SPANS = 48;

export interface ChangePointState {
  windows: number;
  currentStep: number | null;
  stepsSeen: number;
  stepFirstWindow: number;
  spans: SpanState[];
  /** Figures since the rollout's first window, and since the current step began. */
  whole: number[];
  step: number[];
}

/** Share of the change-point weight on planned step starts; the rest is spread over every window. */
const STEP_START_SHARE = 0.5;

/**
 * Prior weight of a change at window `index` (0-based), the `stepsBefore`-th step start if it is
 * one. Step starts: a quarter of the mass on the first (the whole rollout), a quarter shared by
 * the other planned steps; unplanned extra steps get none. Every window: half the mass as
 * H/((k+H)(k+H+1)), which telescopes to exactly 1 over k = 0, 1, 2, …. Weights depend only on the
 * window's position, never on its counts, and sum to at most 1.
 */
export function changePointWeight(index: number, stepStart: number | null, plannedSteps: number, plannedChecks: number): number {
  const horizon = Math.max(1, plannedChecks);
  const perWindow = ((1 - STEP_START_SHARE) * horizon) / ((index + horizon) * (index + horizon + 1));
  if (stepStart === null || stepStart >= plannedSteps) return perWindow;
  const first = plannedSteps === 1 ? STEP_START_SHARE : STEP_START_SHARE / 2;
  const step = stepStart === 0 ? first : (STEP_START_SHARE - first) / (plannedSteps - 1);
  return perWindow + step;
}

export interface Evidence {
  /** log of the mixture e-value. */
  log: number;
  /** The span and test contributing most: where the evidence for a regression starts. */
  span: SpanState;
  test: number;
  /** log of the mixture over the given tests only. */
  logOf(tests: readonly number[]): number;
}

export interface ChangePointMixture {
  /** Opens this window's span (every window is a candidate change point). */
  begin(step: number, startedAt?: Date): void;
  /**
   * Adds this window's log likelihood (ratio) per test and its figures to every open span; a
   * function gives each span its own increments (a running estimate of the span's own rate).
   * `net`, when given, sets each span's evidence net of its denominator after the sums are in.
   * `spanSums`, when given, gives each span its own figures (the rollout's and the step's stay `sums`).
   */
  add(
    logIncrements: readonly number[] | ((span: SpanState) => readonly number[]),
    sums: readonly number[],
    net?: (span: SpanState) => number[],
    spanSums?: (span: SpanState) => readonly number[],
  ): void;
  evidence(): Evidence;
  /** The span that began with the current step. */
  stepSpan(): SpanState;
  /** The live state, read-only (no copy): for the judge's own figures. */
  view(): Readonly<ChangePointState>;
  /** A copy of the state, JSON-safe. */
  state(): ChangePointState;
}

export function createChangePointMixture(
  config: { testWeights: readonly number[]; sums: number; plannedSteps: number; plannedChecks: number },
  initial?: ChangePointState,
): ChangePointMixture {
  const plannedSteps = Math.max(1, Math.floor(config.plannedSteps));
  const plannedChecks = Math.max(1, Math.floor(config.plannedChecks));
  const zeros = () => new Array<number>(config.sums).fill(0);
  const s: ChangePointState = initial
    ? structuredClone(initial)
    : { windows: 0, currentStep: null, stepsSeen: 0, stepFirstWindow: 0, spans: [], whole: zeros(), step: zeros() };
  const stepSpanIndex = () => Math.max(0, s.spans.findIndex((span) => span.window === s.stepFirstWindow));
  // A span is a step start when it is the first window of its step.
  const isStart = (sp: SpanState) => sp.windowInStep === 0;
  const prune = () => {
    while (s.spans.length > MAX_SPANS) {
      const drop = s.spans.findIndex((sp) => !isStart(sp));
      if (drop < 0) break;
      s.spans.splice(drop, 1);
    }
  };
  prune();

  const span = (i: number) => s.spans[i] as SpanState;
  return {
    begin(step, startedAt) {
      const index = s.windows;
      const isStepStart = s.currentStep === null || step !== s.currentStep;
      if (isStepStart) {
        s.currentStep = step;
        s.stepFirstWindow = index;
        s.step = zeros();
      }
      s.spans.push({
        window: index,
        step,
        windowInStep: index - s.stepFirstWindow,
        ...(startedAt ? { startedAt: startedAt.toISOString() } : {}),
        windows: 0,
        logWeight: Math.log(changePointWeight(index, isStepStart ? s.stepsSeen : null, plannedSteps, plannedChecks)),
        logs: config.testWeights.map(() => 0),
        sums: zeros(),
      });
      if (isStepStart) s.stepsSeen += 1;
      prune();
      s.windows += 1;
    },
    add(increments, sums, net, spanSums) {
      for (const sp of s.spans) {
        const inc = typeof increments === 'function' ? increments(sp) : increments;
        const own = spanSums ? spanSums(sp) : sums;
        for (let t = 0; t < sp.logs.length; t++) (sp.logs[t] as number) += inc[t] ?? 0;
        // A span from a state saved with fewer figures grows to the current count.
        while (sp.sums.length < config.sums) sp.sums.push(0);
        for (let i = 0; i < sp.sums.length; i++) (sp.sums[i] as number) += own[i] ?? 0;
        sp.windows += 1;
        if (net) sp.net = net(sp);
      }
      for (let i = 0; i < config.sums; i++) {
        (s.whole[i] as number) += sums[i] ?? 0;
        (s.step[i] as number) += sums[i] ?? 0;
      }
    },
    evidence() {
      const terms: Array<{ log: number; span: number; test: number }> = [];
      s.spans.forEach((sp, i) => {
        const logs = spanLogs(sp);
        config.testWeights.forEach((w, t) => {
          if (w > 0) terms.push({ log: sp.logWeight + Math.log(w) + (logs[t] as number), span: i, test: t });
        });
      });
      const best = terms.reduce((a, b) => (b.log > a.log ? b : a), terms[0] ?? { log: -Infinity, span: 0, test: 0 });
      return {
        log: logSumExp(terms.map((t) => t.log)),
        span: span(best.span),
        test: best.test,
        logOf: (tests) => logSumExp(terms.filter((t) => tests.includes(t.test)).map((t) => t.log)),
      };
    },
    stepSpan: () => span(stepSpanIndex()),
    view: () => s,
    state: () => structuredClone(s),
  };
}
