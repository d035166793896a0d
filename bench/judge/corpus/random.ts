// A seeded random source and the few distributions the corpus needs. Written here, not shared
// with the simulator bench or scripts/traffic-model.ts, so the corpus owes nothing to the models
// the judges were tuned on.

/** sfc32 seeded through splitmix32: fast, 128-bit state, good enough for simulation. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.uniform();
  }

  /** A child stream: the same parent seed and key always give the same child. */
  fork(key: number): Rng {
    return new Rng((Math.imul(this.a ^ key, 0x27d4eb2d) + Math.imul(key + 1, 0x165667b1)) >>> 0);
  }

  /** Uniform on (0, 1): never exactly 0, so logs are safe. */
  uniform(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return (t + 0.5) / 4294967296;
  }

  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  logUniform(lo: number, hi: number): number {
    return Math.exp(this.between(Math.log(lo), Math.log(hi)));
  }

  normal(): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return z;
    }
    const u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Gamma(shape, 1) by Marsaglia and Tsang. */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.uniform(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniform();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  beta(a: number, b: number): number {
    const x = this.gamma(a);
    return x / (x + this.gamma(b));
  }

  poisson(mean: number): number {
    if (mean <= 0) return 0;
    if (mean < 30) {
      const limit = Math.exp(-mean);
      let k = 0;
      let p = this.uniform();
      while (p > limit) {
        k++;
        p *= this.uniform();
      }
      return k;
    }
    // Normal approximation with continuity correction: at these means the error is far below
    // the traffic model's own wander.
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()));
  }

  binomial(n: number, p: number): number {
    if (n <= 0 || p <= 0) return 0;
    if (p >= 1) return n;
    if (p > 0.5) return n - this.binomial(n, 1 - p);
    const mean = n * p;
    if (n < 40) {
      let k = 0;
      for (let i = 0; i < n; i++) if (this.uniform() < p) k++;
      return k;
    }
    if (mean < 20) {
      // Inversion by waiting times (geometric gaps): exact, and quick when few successes.
      const logQ = Math.log1p(-p);
      if (!(logQ < 0)) return 0;
      let k = 0;
      let position = 0;
      for (;;) {
        position += Math.floor(Math.log(this.uniform()) / logQ) + 1;
        if (position > n) return k;
        k++;
      }
    }
    const sd = Math.sqrt(mean * (1 - p));
    return Math.min(n, Math.max(0, Math.round(mean + sd * this.normal())));
  }

  /** Splits n over cells with the given probabilities (summing to 1) by successive binomials. */
  multinomial(n: number, probabilities: readonly number[]): number[] {
    const counts = new Array<number>(probabilities.length).fill(0);
    let left = n;
    let mass = 1;
    for (let i = 0; i < probabilities.length && left > 0; i++) {
      const p = probabilities[i] ?? 0;
      if (i === probabilities.length - 1 || mass <= p) {
        counts[i] = left;
        left = 0;
        break;
      }
      const k = this.binomial(left, Math.min(1, p / mass));
      counts[i] = k;
      left -= k;
      mass -= p;
    }
    return counts;
  }
}

/** Standard normal CDF (Abramowitz and Stegun 7.1.26 via erf; error below 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** P(X ≤ x) for a lognormal with log-median mu and log-sd sigma. */
export function lognormalCdf(x: number, mu: number, sigma: number): number {
  if (x <= 0) return 0;
  return normalCdf((Math.log(x) - mu) / sigma);
}
