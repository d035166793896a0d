// A small seeded pseudo-random source and the variates the judge benchmark and the property tests
// need. Seeded so that a benchmark table or a failing property test can be reproduced exactly;
// Math.random cannot be seeded.

export interface Random {
  /** Uniform on the open interval (0, 1). */
  uniform(): number;
  normal(): number;
  /** Gamma with the given shape and scale (mean shape × scale). */
  gamma(shape: number, scale: number): number;
  poisson(mean: number): number;
  binomial(n: number, p: number): number;
  /** exp(N(mu, sigma²)). */
  lognormal(mu: number, sigma: number): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

// splitmix32 spreads a small integer seed over the 128 bits of xoshiro's state, so seeds 1, 2, 3
// give unrelated streams.
function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** xoshiro128** (Blackman & Vigna, 2018): fast, 128-bit state, good statistical quality. */
export function createRandom(seed: number): Random {
  const mix = splitmix32(seed);
  let s0 = mix();
  let s1 = mix();
  let s2 = mix();
  let s3 = mix();
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;

  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };

  const uniform = (): number => (nextUint32() + 0.5) / 4294967296;

  let spareNormal: number | null = null;
  const normal = (): number => {
    if (spareNormal !== null) {
      const value = spareNormal;
      spareNormal = null;
      return value;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    spareNormal = r * Math.sin(angle);
    return r * Math.cos(angle);
  };

  // Marsaglia & Tsang (2000), with the shape < 1 boost U^(1/shape).
  const gamma = (shape: number, scale: number): number => {
    if (!(shape > 0) || !(scale > 0)) return 0;
    if (shape < 1) return gamma(shape + 1, scale) * Math.pow(uniform(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = uniform();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v * scale;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v * scale;
    }
  };

  const poisson = (mean: number): number => {
    if (!(mean > 0)) return 0;
    if (mean < 30) {
      // Knuth's multiplication method: exact, O(mean).
      const limit = Math.exp(-mean);
      let k = 0;
      let product = uniform();
      while (product > limit) {
        k++;
        product *= uniform();
      }
      return k;
    }
    return ptrs(mean);
  };

  // Hörmann (1993), "The transformed rejection method for generating Poisson random variables":
  // exact and O(1) for large means.
  const ptrs = (mean: number): number => {
    const slam = Math.sqrt(mean);
    const loglam = Math.log(mean);
    const b = 0.931 + 2.53 * slam;
    const a = -0.059 + 0.02483 * b;
    const invalpha = 1.1239 + 1.1328 / (b - 3.4);
    const vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
      const u = uniform() - 0.5;
      const v = uniform();
      const us = 0.5 - Math.abs(u);
      const k = Math.floor(((2 * a) / us + b) * u + mean + 0.43);
      if (us >= 0.07 && v <= vr) return k;
      if (k < 0 || (us < 0.013 && v > us)) continue;
      if (Math.log(v) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -mean + k * loglam - logFactorial(k)) return k;
    }
  };

  const binomial = (n: number, p: number): number => {
    const trials = Math.max(0, Math.round(n));
    if (trials === 0 || !(p > 0)) return 0;
    if (p >= 1) return trials;
    if (p > 0.5) return trials - binomial(trials, 1 - p);
    const mean = trials * p;
    if (mean < 25) {
      // Exact: count successes by jumping over geometric gaps of failures, O(mean).
      const logQ = Math.log1p(-p);
      let successes = 0;
      let position = 0;
      for (;;) {
        position += Math.floor(Math.log(uniform()) / logQ) + 1;
        if (position > trials) return successes;
        successes++;
      }
    }
    // Normal approximation with continuity correction once n·p ≥ 25; skew is then below 0.2 and
    // the benchmark only needs realistic counts, not exact tails of this sampler.
    const draw = Math.round(mean + Math.sqrt(mean * (1 - p)) * normal());
    return Math.min(trials, Math.max(0, draw));
  };

  return {
    uniform,
    normal,
    gamma,
    poisson,
    binomial,
    lognormal: (mu, sigma) => Math.exp(mu + sigma * normal()),
    int: (n) => Math.floor(uniform() * n),
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const LOG_FACTORIAL_TABLE: number[] = [0];
/** log(k!) exactly from a table for small k, Stirling's series beyond. */
export function logFactorial(k: number): number {
  if (k < 256) {
    while (LOG_FACTORIAL_TABLE.length <= k) {
      const i = LOG_FACTORIAL_TABLE.length;
      LOG_FACTORIAL_TABLE.push((LOG_FACTORIAL_TABLE[i - 1] ?? 0) + Math.log(i));
    }
    return LOG_FACTORIAL_TABLE[k] ?? 0;
  }
  const x = k + 1;
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * x) - 1 / (360 * x * x * x);
}
