// Seeded rollouts with the noise a real ingress-nginx shows, for the judges' unit tests and the
// quick tuning simulation (scripts/judge-sim.ts): 30 s scrapes (two per 1-minute window), Poisson
// arrivals, each side's error rate wandering independently from scrape to scrape (Beta around the
// base rate, concentration 100–300), lognormal latency (σ ≈ 0.5) counted in ingress-nginx's
// default buckets, the default schedule (10% for 15 checks, 25% for 10, 50% for 15).

import type { Bucket } from '../../src/analysis/sequential/histogram.js';
import { standardNormalCdf } from '../../src/analysis/sequential/evidence.js';
import type { Random } from '../../src/analysis/sequential/random.js';
import type { SequentialDecision } from '../../src/analysis/sequential/types.js';

export const NGINX_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity];
export const DEFAULT_SCHEDULE = [
  { weight: 0.1, checks: 15 },
  { weight: 0.25, checks: 10 },
  { weight: 0.5, checks: 15 },
];

export interface SideSpec {
  /** Base error rate and the Beta concentration of its scrape-to-scrape wander. */
  errorRate: number;
  concentration: number;
  /** Lognormal latency: median seconds and log-sd. */
  medianLatency: number;
  sigma: number;
}

export interface RolloutSpec {
  rps: number;
  stable: SideSpec;
  canary: SideSpec;
  /** The canary after the onset (same as `canary` when there is no regression). */
  regressed?: Partial<SideSpec>;
  /** 0-based window index where the regression starts. */
  onset?: number;
  schedule?: typeof DEFAULT_SCHEDULE;
}

export interface SimSide {
  requests: number;
  errors: number;
  buckets: Bucket[];
}

export interface SimWindow {
  step: number;
  index: number;
  regressed: boolean;
  canary: SimSide;
  stable: SimSide;
}

function beta(random: Random, a: number, b: number): number {
  const x = random.gamma(a, 1);
  return x / (x + random.gamma(b, 1));
}

function scrape(random: Random, side: SideSpec, requests: number): SimSide {
  const rate = side.errorRate > 0 ? beta(random, side.errorRate * side.concentration, (1 - side.errorRate) * side.concentration) : 0;
  const errors = random.binomial(requests, rate);
  const mu = Math.log(side.medianLatency);
  let left = requests;
  let mass = 1;
  let cumulative = 0;
  const buckets: Bucket[] = [];
  for (const le of NGINX_BUCKETS) {
    const p = Number.isFinite(le) ? standardNormalCdf((Math.log(le) - mu) / side.sigma) : 1;
    const cell = p - (mass === 1 ? 0 : 1 - mass);
    const inCell = !Number.isFinite(le) || mass <= 0 ? left : random.binomial(left, Math.min(1, Math.max(0, cell / mass)));
    left -= inCell;
    mass -= cell;
    cumulative += inCell;
    buckets.push({ le, count: cumulative });
  }
  return { requests, errors, buckets };
}

/** Two sides' counts summed (two scrapes into one window). */
export function addSides(a: SimSide, b: SimSide): SimSide {
  return { requests: a.requests + b.requests, errors: a.errors + b.errors, buckets: a.buckets.map((x, i) => ({ le: x.le, count: x.count + (b.buckets[i]?.count ?? 0) })) };
}

/** One window of `scrapes` 30-second scrapes for one side at `rps` requests per second. */
export function simWindow(random: Random, side: SideSpec, rps: number, scrapes = 2): SimSide {
  let total = scrape(random, side, random.poisson(rps * 30));
  for (let i = 1; i < scrapes; i++) total = addSides(total, scrape(random, side, random.poisson(rps * 30)));
  return total;
}

export function simulateRollout(random: Random, spec: RolloutSpec): SimWindow[] {
  const windows: SimWindow[] = [];
  let index = 0;
  (spec.schedule ?? DEFAULT_SCHEDULE).forEach((s, step) => {
    for (let c = 0; c < s.checks; c++, index++) {
      const regressed = spec.onset !== undefined && index >= spec.onset;
      const canary = regressed ? { ...spec.canary, ...spec.regressed } : spec.canary;
      windows.push({
        step,
        index,
        regressed,
        canary: simWindow(random, canary, spec.rps * s.weight),
        stable: simWindow(random, spec.stable, spec.rps * (1 - s.weight)),
      });
    }
  });
  return windows;
}

/** Stable alone over the look-back before the rollout: per-window moments and the pooled buckets. */
export function simulateBaseline(random: Random, side: SideSpec, rps: number, windows = 60) {
  const rates: number[] = [];
  let inverse = 0;
  let pooled: SimSide | null = null;
  for (let i = 0; i < windows; i++) {
    const w = simWindow(random, side, rps);
    pooled = pooled ? addSides(pooled, w) : w;
    if (w.requests > 0) {
      rates.push(w.errors / w.requests);
      inverse += 1 / w.requests;
    }
  }
  const mean = rates.reduce((a, b) => a + b, 0) / Math.max(1, rates.length);
  const sd = Math.sqrt(rates.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, rates.length));
  return {
    moments: { meanRate: mean, sdRate: sd, meanInverseRequests: inverse / Math.max(1, rates.length), windows: rates.length },
    buckets: pooled?.buckets ?? [],
  };
}

/** Where a rollout was rolled back: its step, the check within that step, and checks since the first. */
export interface StepRulesRollback {
  step: number;
  check: number;
  checks: number;
}

/**
 * Where one rollout under the engine's step rules is rolled back, or null: a step ends on a pass or, with nothing adverse, at its planned checks; adverse evidence
 * holds it up to its planned checks again, and a hold that ends on adverse evidence is a rollback.
 * Still holding after 4× its planned checks counts as promoted (the judge never rolled it back).
 * `observe` judges the next window of `step` at the canary's share `weight`.
 */
export function rollbackUnderStepRules(observe: (step: number, weight: number) => SequentialDecision): StepRulesRollback | null {
  let checks = 0;
  for (let step = 0; step < DEFAULT_SCHEDULE.length; step++) {
    const s = DEFAULT_SCHEDULE[step] as (typeof DEFAULT_SCHEDULE)[number];
    for (let done = 1; ; done++) {
      const d = observe(step, s.weight);
      checks++;
      if (d.decision === 'fail') return { step, check: done, checks };
      if (done < s.checks) continue;
      if (d.decision === 'pass' || (d.adverse === null && !d.holding)) break;
      if (done >= 2 * s.checks && d.adverse !== null) return { step, check: done, checks };
      if (done >= 4 * s.checks) break;
    }
  }
  return null;
}

/** Whether one rollout under the engine's step rules ends in a rollback (rollbackUnderStepRules). */
export function rolledBackUnderStepRules(observe: (step: number, weight: number) => SequentialDecision): boolean {
  return rollbackUnderStepRules(observe) !== null;
}
