import { Rng } from './random.js';

// What the benchmark corpus holds: rollouts of ingress-nginx traffic, each in its own namespace
// over the same stretch of time, so one Prometheus serves them all. Each rollout says what it was
// generated with (rates, latency, onset) and what a correct judge does with it. The numbers come
// from the issue's description of production traffic, not from the judges' own models.

export const MINUTE_MS = 60_000;
/** When every rollout starts (the backtest's --from). */
export const ROLLOUT_START_MS = Date.parse('2026-03-02T12:00:00Z');
/** History before the start: the policy's 1h baseline look-back plus a margin. */
export const HISTORY_BEFORE_MS = 70 * MINUTE_MS;
/** After the start: 40 minutes of steps, then room for held steps and the promotion. */
export const HISTORY_AFTER_MS = 80 * MINUTE_MS;
export const SCRAPE_MS = 30_000;

/** The runbook's steps (the default policy's): the canary's share of traffic as history records it. */
export const STEPS = [
  { weight: 10, startMin: 0, endMin: 15 },
  { weight: 25, startMin: 15, endMin: 25 },
  { weight: 50, startMin: 25, endMin: 40 },
] as const;
export const PROMOTED_AT_MIN = 40;

/** Canary weight (0..1) the history shows at `ms`. */
export function canaryShareAt(ms: number): number {
  const minutes = (ms - ROLLOUT_START_MS) / MINUTE_MS;
  if (minutes < 0) return 0;
  for (const step of STEPS) if (minutes < step.endMin) return step.weight / 100;
  return 1;
}

/** Onsets: at each step's first minute and in its middle. */
export const ONSETS = [
  { label: '10% start', minutes: 0 },
  { label: '10% mid', minutes: 7.5 },
  { label: '25% start', minutes: 15 },
  { label: '25% mid', minutes: 20 },
  { label: '50% start', minutes: 25 },
  { label: '50% mid', minutes: 32.5 },
] as const;

export const KINDS = [
  'equal',
  'error +1pt',
  'error +3pt',
  'error +5pt',
  'error +10pt',
  'latency 1.3x',
  'latency 2x',
  'latency 3x',
  'slow stable (P95 > 2s)',
  'dead canary (5xx)',
  'dead canary (no traffic)',
  'no data',
  // The edges production lives at (issue 15).
  'zero stable +0.5pt',
  'zero stable +1pt',
  'zero stable +2.5pt',
  'zero stable +4pt',
  'bucket 1.3x',
  'bucket 1.45x',
  'bucket 1.6x',
  'bucket 2x',
  'P95 1.8s (cap 2s)',
  'P95 2.3s (cap 2s)',
  'stable over cap',
  'cap: 4% -> 6%',
  'pod replaced',
  'shared burst',
  'slow ramp +5pt',
  'bimodal latency',
  'very low traffic',
] as const;
export type Kind = (typeof KINDS)[number];

/** promote: exit 0 · rollback: exit 3 · either: at the margin, 0 or 3 · invalid: exit 2. */
export type Expected = 'promote' | 'rollback' | 'either' | 'invalid';

export const EXPECTED: Record<Kind, Expected> = {
  equal: 'promote',
  'error +1pt': 'promote',
  'error +3pt': 'either',
  'error +5pt': 'rollback',
  'error +10pt': 'rollback',
  'latency 1.3x': 'promote',
  'latency 2x': 'rollback',
  'latency 3x': 'rollback',
  'slow stable (P95 > 2s)': 'rollback',
  'dead canary (5xx)': 'rollback',
  'dead canary (no traffic)': 'rollback',
  'no data': 'invalid',
  'zero stable +0.5pt': 'promote',
  'zero stable +1pt': 'promote',
  'zero stable +2.5pt': 'either',
  'zero stable +4pt': 'rollback',
  'bucket 1.3x': 'promote',
  'bucket 1.45x': 'promote',
  'bucket 1.6x': 'either',
  'bucket 2x': 'rollback',
  'P95 1.8s (cap 2s)': 'promote',
  'P95 2.3s (cap 2s)': 'rollback',
  'stable over cap': 'rollback',
  'cap: 4% -> 6%': 'rollback',
  'pod replaced': 'promote',
  'shared burst': 'promote',
  'slow ramp +5pt': 'rollback',
  'bimodal latency': 'promote',
  'very low traffic': 'promote',
};

/** The edge kinds, their traffic band, and what sets them apart (applied over the standard draws). */
const EDGE_KINDS: ReadonlyArray<{ kind: Kind; band: 'high' | 'low' }> = KINDS.slice(KINDS.indexOf('zero stable +0.5pt')).map((kind) => ({
  kind,
  band: kind === 'very low traffic' ? 'low' : 'high',
}));

const ERROR_DELTA: Partial<Record<Kind, number>> = {
  'error +1pt': 0.01,
  'error +3pt': 0.03,
  'error +5pt': 0.05,
  'error +10pt': 0.1,
  'zero stable +0.5pt': 0.005,
  'zero stable +1pt': 0.01,
  'zero stable +2.5pt': 0.025,
  'zero stable +4pt': 0.04,
  'cap: 4% -> 6%': 0.02,
  'slow ramp +5pt': 0.05,
};
const LATENCY_FACTOR: Partial<Record<Kind, number>> = {
  'latency 1.3x': 1.3,
  'latency 2x': 2,
  'latency 3x': 3,
  'bucket 1.3x': 1.3,
  'bucket 1.45x': 1.45,
  'bucket 1.6x': 1.6,
  'bucket 2x': 2,
};
const REGRESSION_KINDS: readonly Kind[] = ['error +1pt', 'error +3pt', 'error +5pt', 'error +10pt', 'latency 1.3x', 'latency 2x', 'latency 3x'];

/** Traffic below this many requests per second (both sides together) is the "low" band. */
export const HIGH_RPS = 10;
export const Z95 = 1.6448536269514722;

export interface SideModel {
  /** Base 5xx share; each 30 s interval draws its own from Beta(c·p, c·(1−p)). */
  errorRate: number;
  concentration: number;
  /** Lognormal latency: log-median and log-sd (seconds). */
  mu: number;
  sigma: number;
}

export interface RolloutSpec {
  /** Also the namespace the rollout's series live in. */
  id: string;
  kind: Kind;
  expected: Expected;
  seed: number;
  /** Mean requests per second through the Ingress, both sides together. */
  rps: number;
  band: 'high' | 'low';
  /** Slow sinusoidal drift of the request rate. */
  drift: { amplitude: number; periodMs: number; phase: number };
  stable: SideModel;
  /** The canary before its onset: the same as stable (a new build of the same service). */
  canary: SideModel;
  /** From `onsetMs` the canary changes (null: never). */
  onset: { label: string; ms: number } | null;
  errorDelta: number;
  latencyFactor: number;
  /** From onset, canary requests answer 503 in milliseconds (pods gone, no endpoints). */
  dead5xx: boolean;
  /** From onset, no canary traffic at all (ingress-nginx sends nothing to a backend with no endpoints). */
  deadNoTraffic: boolean;
  /** Controller pod 0's share of requests. */
  podShare: number;
  /** Per controller pod, the offset of its scrapes within the 30 s interval. */
  scrapeOffsetMs: [number, number];
  /** Controller pod 1 restarts here: two missed scrapes, then its counters start again from 0. */
  restartMs: number;
  /** What `canary backtest` is asked: normally checkout in this namespace from the rollout start. */
  backtest: { target: string; namespace: string; fromMs: number; why?: string };
  /** False for no-data rollouts whose namespace holds nothing at all. */
  hasData: boolean;
  /** The error delta grows linearly over this many ms from the onset (0: a step). */
  rampMs: number;
  /** Both sides fail this share of requests for a while (a dependency's bad minutes). */
  burst: { fromMs: number; toMs: number; errorRate: number } | null;
  /** Both sides: this share of requests comes from a second log-normal, `factor` × slower. */
  slowMode: { share: number; factor: number; sigma: number } | null;
  /** At its restart controller pod 1 is replaced: a new pod name, so new series. */
  replacePod: boolean;
}

export interface CorpusSize {
  /** Equal canaries at ≥ 10 rps and below. */
  equalHigh: number;
  equalLow: number;
  /** Per regression kind and onset, at ≥ 10 rps. */
  perOnsetHigh: number;
  /** Per regression kind, below 10 rps (spread over the onsets). */
  perKindLow: number;
  slowStable: number;
  dead: number;
  /** Per edge kind (issue 15). */
  edge: number;
}

export const FULL_SIZE: CorpusSize = { equalHigh: 100, equalLow: 20, perOnsetHigh: 3, perKindLow: 3, slowStable: 6, dead: 3, edge: 4 };
export const QUICK_SIZE: CorpusSize = { equalHigh: 20, equalLow: 6, perOnsetHigh: 1, perKindLow: 1, slowStable: 2, dead: 1, edge: 2 };

function side(rng: Rng, errorRate: number, p95: number): SideModel {
  const sigma = rng.between(0.45, 0.55);
  return { errorRate, concentration: rng.between(100, 300), mu: Math.log(p95) - Z95 * sigma, sigma };
}

/** The true P95 (seconds) of a side's latency distribution. */
export function trueP95(model: SideModel, factor = 1): number {
  return Math.exp(model.mu + Z95 * model.sigma) * factor;
}

interface Draft {
  kind: Kind;
  band: 'high' | 'low';
  onset: (typeof ONSETS)[number] | null;
  backtest?: 'wrong-namespace' | 'wrong-target' | 'future';
}

function drafts(size: CorpusSize): Draft[] {
  const out: Draft[] = [];
  for (let i = 0; i < size.equalHigh; i++) out.push({ kind: 'equal', band: 'high', onset: null });
  for (let i = 0; i < size.equalLow; i++) out.push({ kind: 'equal', band: 'low', onset: null });
  REGRESSION_KINDS.forEach((kind, k) => {
    for (const onset of ONSETS) for (let i = 0; i < size.perOnsetHigh; i++) out.push({ kind, band: 'high', onset });
    for (let i = 0; i < size.perKindLow; i++) out.push({ kind, band: 'low', onset: ONSETS[(i + k) % ONSETS.length] ?? null });
  });
  for (let i = 0; i < size.slowStable; i++) out.push({ kind: 'slow stable (P95 > 2s)', band: i % 3 === 2 ? 'low' : 'high', onset: null });
  // Dead canaries: from the start, or pods lost in the middle of a step.
  const deadOnsets = [ONSETS[0], ONSETS[1], ONSETS[3]];
  for (let i = 0; i < size.dead; i++) {
    const onset = deadOnsets[i % deadOnsets.length] ?? null;
    out.push({ kind: 'dead canary (5xx)', band: 'high', onset });
    out.push({ kind: 'dead canary (no traffic)', band: 'high', onset });
  }
  out.push({ kind: 'no data', band: 'high', onset: null, backtest: 'wrong-namespace' });
  out.push({ kind: 'no data', band: 'high', onset: null, backtest: 'wrong-target' });
  out.push({ kind: 'no data', band: 'high', onset: null, backtest: 'future' });
  // The edge kinds come last, so the standard rollouts keep their ids and draws.
  for (const { kind, band } of EDGE_KINDS) {
    for (let i = 0; i < size.edge; i++) {
      const onset = kind === 'slow ramp +5pt' ? ONSETS[0] : ERROR_DELTA[kind] !== undefined || LATENCY_FACTOR[kind] !== undefined ? ONSETS[i % 2 === 0 ? 0 : 2] : null;
      out.push({ kind, band, onset: onset ?? null });
    }
  }
  return out;
}

/** The corpus: deterministic for a seed and size. */
export function buildCorpus(seed: number, size: CorpusSize): RolloutSpec[] {
  const root = new Rng(seed);
  return drafts(size).map((draft, index) => {
    const rng = root.fork(index + 1);
    const id = `bench-${String(index + 1).padStart(3, '0')}`;
    const rps = draft.band === 'high' ? rng.logUniform(HIGH_RPS, 200) : rng.logUniform(0.5, HIGH_RPS);
    const slow = draft.kind === 'slow stable (P95 > 2s)';
    const stableP95 = slow ? rng.logUniform(2.5, 4) : rng.logUniform(0.08, 0.5);
    const errorRate = rng.logUniform(0.001, 0.02);
    const stable = side(rng, errorRate, stableP95);
    // The canary's own noise is drawn independently: same base, its own wander and spread.
    const canary = side(rng, errorRate, stableP95);
    canary.mu = stable.mu;
    canary.sigma = stable.sigma;
    const onsetMs = draft.onset ? ROLLOUT_START_MS + draft.onset.minutes * MINUTE_MS : null;
    const dataless = draft.backtest === 'wrong-namespace';
    const backtest: RolloutSpec['backtest'] =
      draft.backtest === 'wrong-namespace'
        ? { target: 'checkout', namespace: `${id}-typo`, fromMs: ROLLOUT_START_MS, why: 'a namespace with nothing in it' }
        : draft.backtest === 'wrong-target'
          ? { target: 'chekout', namespace: id, fromMs: ROLLOUT_START_MS, why: 'a mistyped target' }
          : draft.backtest === 'future'
            ? { target: 'checkout', namespace: id, fromMs: ROLLOUT_START_MS + 30 * 24 * 60 * MINUTE_MS, why: '--from a month after the data' }
            : { target: 'checkout', namespace: id, fromMs: ROLLOUT_START_MS };
    const edge = edgeOf(draft.kind, rng, stable, canary);
    return {
      id,
      kind: draft.kind,
      expected: EXPECTED[draft.kind],
      seed: (rng.uniform() * 2 ** 32) >>> 0,
      band: draft.band,
      drift: { amplitude: rng.between(0.1, 0.3), periodMs: rng.between(2, 6) * 60 * MINUTE_MS, phase: rng.between(0, 2 * Math.PI) },
      stable,
      canary,
      onset: draft.onset && onsetMs !== null ? { label: draft.onset.label, ms: onsetMs } : null,
      errorDelta: ERROR_DELTA[draft.kind] ?? 0,
      latencyFactor: LATENCY_FACTOR[draft.kind] ?? 1,
      dead5xx: draft.kind === 'dead canary (5xx)',
      deadNoTraffic: draft.kind === 'dead canary (no traffic)',
      podShare: rng.between(0.4, 0.6),
      scrapeOffsetMs: [Math.round(rng.between(0, SCRAPE_MS)), Math.round(rng.between(0, SCRAPE_MS))],
      restartMs: ROLLOUT_START_MS + Math.round(rng.between(-20, 40) * MINUTE_MS),
      backtest,
      hasData: !dataless,
      ...edge,
      rps: edge.rps ?? rps,
    };
  });
}

/**
 * What an edge kind changes over the standard draws (the sides are changed in place): stables with
 * (almost) no errors, latencies whose 1.5× line or P95 lies inside ingress-nginx's 1–2.5 s bucket,
 * error rates at a cap, a replaced controller pod, a burst both sides share, a slow ramp, two
 * latency modes, very low traffic.
 */
function edgeOf(kind: Kind, rng: Rng, stable: SideModel, canary: SideModel): Omit<RolloutSpec, 'id' | 'kind' | 'expected' | 'seed' | 'rps' | 'band' | 'drift' | 'stable' | 'canary' | 'onset' | 'errorDelta' | 'latencyFactor' | 'dead5xx' | 'deadNoTraffic' | 'podShare' | 'scrapeOffsetMs' | 'restartMs' | 'backtest' | 'hasData'> & { rps?: number } {
  const plain = { rampMs: 0, burst: null, slowMode: null, replacePod: false };
  const both = (f: (s: SideModel) => void) => [stable, canary].forEach(f);
  const latency = (p95: number, sigma: number) => both((s) => ((s.sigma = sigma), (s.mu = Math.log(p95) - Z95 * sigma)));
  if (kind.startsWith('zero stable')) {
    const base = rng.uniform() < 0.5 ? 0 : rng.between(0.0001, 0.0002);
    both((s) => (s.errorRate = base));
    return { ...plain, rps: rng.logUniform(50, 200) };
  }
  if (kind.startsWith('bucket')) latency(rng.between(0.9, 1.05), rng.between(0.3, 0.5));
  if (kind === 'P95 1.8s (cap 2s)') latency(rng.between(1.7, 1.85), rng.between(0.3, 0.5));
  if (kind === 'P95 2.3s (cap 2s)') latency(rng.between(2.2, 2.4), rng.between(0.3, 0.5));
  if (kind === 'stable over cap') both((s) => (s.errorRate = rng.between(0.055, 0.07)));
  if (kind === 'cap: 4% -> 6%') both((s) => (s.errorRate = 0.04));
  if (kind === 'pod replaced') return { ...plain, replacePod: true };
  if (kind === 'shared burst') {
    const fromMs = ROLLOUT_START_MS + Math.round(rng.between(3, 35) * MINUTE_MS);
    return { ...plain, burst: { fromMs, toMs: fromMs + 2 * MINUTE_MS, errorRate: rng.between(0.05, 0.15) } };
  }
  if (kind === 'slow ramp +5pt') return { ...plain, rampMs: 30 * MINUTE_MS };
  if (kind === 'bimodal latency') return { ...plain, slowMode: { share: rng.between(0.02, 0.04), factor: rng.between(4, 8), sigma: 0.3 } };
  if (kind === 'very low traffic') return { ...plain, rps: rng.logUniform(0.2, 0.5) };
  return plain;
}
