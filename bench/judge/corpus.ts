// A seeded corpus of simulated rollouts of the default schedule (10% for 15 min → 25% for 10 min →
// 50% for 15 min, one check a minute over a 1-minute window), canary against stable, with the
// noise production traffic has:
// - request volume that wanders (±20% over the hour) and Poisson arrivals;
// - error rates that drift together on both sides (a shared random walk plus occasional shared
//   bursts) and jitter independently per side each minute (gamma-distributed rate multiplier:
//   overdispersed, negative-binomial-like counts);
// - lognormal latencies whose median drifts together and jitters per side each minute;
// - counts that are not integers, as increase() extrapolates them to the window's edges.
// Latency is simulated as histogram bucket counts (one conditional binomial per bucket), never as
// individual requests, so a 500 req/s hour costs as little as a 0.5 req/s one.

import type { Bucket } from '../../src/analysis/sequential/histogram.js';
import { standardNormalCdf } from '../../src/analysis/sequential/evidence.js';
import { createRandom, type Random } from '../../src/analysis/sequential/random.js';

export const SCHEDULE = [
  { weight: 0.1, checks: 15 },
  { weight: 0.25, checks: 10 },
  { weight: 0.5, checks: 15 },
] as const;

export const BUCKET_BOUNDS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, Infinity];

export const BANDS = [
  { name: '0.5–5 rps', low: 0.5, high: 5 },
  { name: '5–50 rps', low: 5, high: 50 },
  { name: '50–500 rps', low: 50, high: 500 },
] as const;

export type RegressionKind = 'error' | 'latency';
export interface Regression {
  kind: RegressionKind;
  /** Added error points (fraction) or latency multiplier. */
  size: number;
  label: string;
  /** Step index (0-based) in which the regression starts. */
  onsetStep: number;
  /** Check within that step (0-based) at which it starts: 0 at the step's start, MID_STEP_CHECK mid-step. */
  onsetCheckInStep: number;
}

/**
 * Where a mid-step regression starts: the 6th check of its step (a bad pod, an expired cache, a
 * degrading dependency — nothing waits for the next traffic shift).
 */
export const MID_STEP_CHECK = 5;

/** Onsets per regression size and step: at the step's first check, and mid-step. */
export const ONSETS_IN_STEP = [0, MID_STEP_CHECK] as const;

export const REGRESSIONS: ReadonlyArray<Omit<Regression, 'onsetStep' | 'onsetCheckInStep'>> = [
  { kind: 'error', size: 0.01, label: '+1 pt errors' },
  { kind: 'error', size: 0.03, label: '+3 pt errors' },
  { kind: 'error', size: 0.1, label: '+10 pt errors' },
  { kind: 'latency', size: 1.3, label: '1.3× latency' },
  { kind: 'latency', size: 2, label: '2× latency' },
  { kind: 'latency', size: 3, label: '3× latency' },
];

export interface Scenario {
  id: number;
  seed: number;
  band: number;
  rps: number;
  baselineErrorRate: number;
  medianLatency: number;
  latencySigma: number;
  /** Coefficient of variation of each side's per-minute error-rate multiplier. */
  errorJitter: number;
  /** Standard deviation of each side's per-minute log-median latency. */
  latencyJitter: number;
  regression: Regression | null;
}

export interface SideWindow {
  requests: number;
  errors: number;
  buckets: Bucket[];
}

/**
 * Extra checks a step can be held for when its planned checks end without a pass: the engine's
 * default inconclusiveLimit. Windows for them are simulated for every step; a judge that does
 * not hold steps never sees them.
 */
export const HOLD_CHECKS = 5;

export interface CheckWindow {
  /** 1-based number of the window within the simulated rollout (planned and hold windows alike). */
  check: number;
  step: number;
  /** True for the windows after a step's planned checks, seen only while the step is held. */
  held: boolean;
  /** True once the scenario's regression has begun (at this window or earlier). */
  regressed: boolean;
  canary: SideWindow;
  stable: SideWindow;
}

export interface CorpusSize {
  healthyPerBand: number;
  perRegressionPerOnsetPerBand: number;
}

export const TOTAL_CHECKS = SCHEDULE.reduce((n, s) => n + s.checks, 0);

/** First check number (1-based) of a step. */
export function firstCheckOfStep(step: number): number {
  let check = 1;
  for (let i = 0; i < step; i++) check += SCHEDULE[i]?.checks ?? 0;
  return check;
}

export function buildCorpus(seed: number, size: CorpusSize): Scenario[] {
  const random = createRandom(seed);
  const scenarios: Scenario[] = [];
  const logUniform = (low: number, high: number) => Math.exp(Math.log(low) + random.uniform() * Math.log(high / low));
  const make = (band: number, regression: Regression | null): Scenario => {
    const b = BANDS[band] ?? BANDS[0];
    return {
      id: scenarios.length,
      seed: Math.floor(random.uniform() * 2 ** 31),
      band,
      rps: logUniform(b.low, b.high),
      baselineErrorRate: logUniform(0.001, 0.02),
      medianLatency: logUniform(0.04, 0.4),
      latencySigma: 0.35 + random.uniform() * 0.4,
      errorJitter: 0.1 + random.uniform() * 0.25,
      latencyJitter: 0.02 + random.uniform() * 0.05,
      regression,
    };
  };
  for (let band = 0; band < BANDS.length; band++) {
    for (let i = 0; i < size.healthyPerBand; i++) scenarios.push(make(band, null));
    for (const r of REGRESSIONS) {
      for (const onsetCheckInStep of ONSETS_IN_STEP) {
        for (let onsetStep = 0; onsetStep < SCHEDULE.length; onsetStep++) {
          for (let i = 0; i < size.perRegressionPerOnsetPerBand; i++) scenarios.push(make(band, { ...r, onsetStep, onsetCheckInStep }));
        }
      }
    }
  }
  return scenarios;
}

/** The windows one rollout's checks see, identical for every judge. */
export function simulateRollout(scenario: Scenario): CheckWindow[] {
  const random = createRandom(scenario.seed);
  const windows: CheckWindow[] = [];
  const onsetStep = scenario.regression ? scenario.regression.onsetStep : Infinity;
  const onsetCheckInStep = scenario.regression ? scenario.regression.onsetCheckInStep : 0;
  const trafficPhase = random.uniform() * 2 * Math.PI;
  let errorDrift = 0;
  let latencyDrift = 0;
  let check = 0;
  for (let step = 0; step < SCHEDULE.length; step++) {
    const { weight, checks } = SCHEDULE[step] as (typeof SCHEDULE)[number];
    for (let c = 0; c < checks + HOLD_CHECKS; c++) {
      check++;
      // Shared by both sides: slow traffic swell, random-walk drift of error rate and latency
      // (mean-reverting), occasional shared bursts.
      const traffic = scenario.rps * 60 * (1 + 0.2 * Math.sin(trafficPhase + (2 * Math.PI * check) / 60));
      errorDrift = 0.9 * errorDrift + 0.1 * random.normal();
      latencyDrift = 0.9 * latencyDrift + 0.04 * random.normal();
      const burst = random.uniform() < 0.02 ? 1.5 + 1.5 * random.uniform() : 1;
      const sharedErrorMultiplier = Math.exp(errorDrift) * burst;
      const sharedLatencyShift = latencyDrift + (burst > 1 ? 0.15 : 0);

      const total = random.poisson(traffic);
      const canaryRequests = random.binomial(total, weight);
      const stableRequests = total - canaryRequests;
      const regressed = step > onsetStep || (step === onsetStep && c >= onsetCheckInStep);
      const extraErrors = regressed && scenario.regression?.kind === 'error' ? scenario.regression.size : 0;
      const latencyFactor = regressed && scenario.regression?.kind === 'latency' ? scenario.regression.size : 1;

      const side = (requests: number, extra: number, factor: number): SideWindow => {
        const shape = 1 / (scenario.errorJitter * scenario.errorJitter);
        const jitter = random.gamma(shape, 1 / shape);
        const rate = Math.min(1, scenario.baselineErrorRate * sharedErrorMultiplier * jitter + extra);
        const errors = random.binomial(requests, rate);
        const mu = Math.log(scenario.medianLatency * factor) + sharedLatencyShift + scenario.latencyJitter * random.normal();
        const buckets = simulateBuckets(random, requests, mu, scenario.latencySigma);
        // increase() extrapolates each series to the window edges: counts come out fractional
        // and a few percent off, independently per series.
        const requestScale = 1 + (random.uniform() - 0.4) * 0.05;
        const errorScale = 1 + (random.uniform() - 0.4) * 0.05;
        return {
          requests: requests * requestScale,
          errors: errors * errorScale,
          buckets: buckets.map((b) => ({ le: b.le, count: b.count * requestScale })),
        };
      };
      windows.push({
        check,
        step,
        held: c >= checks,
        regressed,
        canary: side(canaryRequests, extraErrors, latencyFactor),
        stable: side(stableRequests, 0, 1),
      });
    }
  }
  return windows;
}

function simulateBuckets(random: Random, requests: number, mu: number, sigma: number): Bucket[] {
  const buckets: Bucket[] = [];
  let remaining = requests;
  let cumulative = 0;
  let previousCdf = 0;
  for (const le of BUCKET_BOUNDS) {
    const cdf = Number.isFinite(le) ? standardNormalCdf((Math.log(le) - mu) / sigma) : 1;
    const massLeft = 1 - previousCdf;
    const inBucket = massLeft > 0 ? random.binomial(remaining, Math.min(1, Math.max(0, (cdf - previousCdf) / massLeft))) : 0;
    remaining -= inBucket;
    cumulative += inBucket;
    previousCdf = cdf;
    buckets.push({ le, count: cumulative });
  }
  return buckets;
}

/** Stable's expected histogram over the hour before the rollout (what the engine would query). */
export function preRolloutStableBuckets(scenario: Scenario): Bucket[] {
  const requests = scenario.rps * 3600;
  return BUCKET_BOUNDS.map((le) => ({
    le,
    count: requests * (Number.isFinite(le) ? standardNormalCdf((Math.log(le) - Math.log(scenario.medianLatency)) / scenario.latencySigma) : 1),
  }));
}
