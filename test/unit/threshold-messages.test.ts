import { describe, expect, it } from 'vitest';
import { CheckContext } from '../../src/analysis/check-context.js';
import { judgeErrorRateThreshold } from '../../src/analysis/error-rate.js';
import { judgeLatencyThreshold } from '../../src/analysis/latency.js';
import type { ErrorRateMetric, LatencyMetric } from '../../src/policy/policy.js';
import { thresholdPolicy } from '../support/policies.js';

// What the threshold judge prints: a ratio on the right side of its limit, each reason once.

const policy = thresholdPolicy();
const ctx = new CheckContext(
  policy,
  { namespace: 'shop', ingress: 'checkout', stableService: 'checkout', canaryService: 'checkout-canary', stableDeployment: 'checkout', canaryDeployment: 'checkout-canary' },
  { query: () => Promise.reject(new Error('not used')) },
  new Date('2026-01-15T10:01:00Z'),
  10,
  0,
);
const latency = policy.analysis.metrics.find((m) => m.type === 'latency') as LatencyMetric;
const errors = policy.analysis.metrics.find((m) => m.type === 'error-rate') as ErrorRateMetric;
const traffic = (requests: number | null, errorCount: number | null = 0) => ({ requests, errors: errorCount, queries: [], problem: null });

describe('threshold judge messages', () => {
  it('never prints "1.5× stable, more than the 1.5× allowed": a failing ratio shows the digits that exceed the limit', () => {
    const results = judgeLatencyThreshold(
      latency,
      { canary: { traffic: traffic(500), quantile: 0.3006, query: 'c' }, stable: { traffic: traffic(4500), quantile: 0.2, query: 's' } },
      ctx,
    );
    const ratio = results.find((r) => r.check.includes('× stable'));
    expect(ratio?.verdict).toBe('fail');
    expect(ratio?.reason).toContain('1.503× stable, more than the 1.5× allowed');
  });

  it('prints the reason for thin canary traffic once, not once per check', () => {
    const e = judgeErrorRateThreshold(errors, { canary: traffic(5, 0), stable: traffic(4500, 20) }, ctx);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ verdict: 'inconclusive', check: 'error rate ≤ 5% and ≤ stable + 3 points' });
    const l = judgeLatencyThreshold(
      latency,
      { canary: { traffic: traffic(5), quantile: 0.2, query: 'c' }, stable: { traffic: traffic(4500), quantile: 0.2, query: 's' } },
      ctx,
    );
    expect(l).toHaveLength(1);
    expect(l[0]?.verdict).toBe('inconclusive');
  });

  it('shows a difference just over the margin as over it', () => {
    const e = judgeErrorRateThreshold(errors, { canary: traffic(100_000, 3_500.4), stable: traffic(900_000, 4_500) }, ctx);
    const inc = e.find((r) => r.check.includes('stable +'));
    expect(inc?.verdict).toBe('fail');
    expect(inc?.reason).not.toMatch(/: 3 points above stable, more than/);
  });
});

// Each limit of the threshold judge, on both sides of its boundary (issue 15): loosening or
// tightening any of them by a hair fails one of these.
describe('threshold judge boundaries (policies/threshold.yaml: 5%, +3 points, 2 s, 1.5×, 20 requests)', () => {
  const verdictOf = (results: ReturnType<typeof judgeErrorRateThreshold>, text: string) => results.find((r) => r.check.includes(text))?.verdict;
  const err = (canaryErrors: number, stableErrors: number, canaryRequests = 1000) =>
    judgeErrorRateThreshold(errors, { canary: traffic(canaryRequests, canaryErrors), stable: traffic(1000, stableErrors) }, ctx);

  it('error rate max 5%: 5.0% passes, 5.1% fails', () => {
    expect(verdictOf(err(50, 40), '≤ 5%')).toBe('pass');
    expect(verdictOf(err(51, 40), '≤ 5%')).toBe('fail');
  });

  it('error rate maxIncrease 3 points: +3.0 points passes, +3.1 fails, at several stable rates', () => {
    for (const stable of [0, 5, 10]) {
      expect(verdictOf(err(stable + 30, stable), 'stable +'), `stable ${stable / 10}%`).toBe('pass');
      expect(verdictOf(err(stable + 31, stable), 'stable +'), `stable ${stable / 10}%`).toBe('fail');
    }
  });

  it('minRequests 20: 19 canary requests are inconclusive, 20 are judged', () => {
    expect(err(0, 0, 19).every((r) => r.verdict === 'inconclusive')).toBe(true);
    expect(err(0, 0, 20).every((r) => r.verdict === 'pass')).toBe(true);
    expect(err(2, 0, 20).some((r) => r.verdict === 'fail')).toBe(true);
  });

  const lat = (canary: number, stable: number, canaryRequests = 500) =>
    judgeLatencyThreshold(latency, { canary: { traffic: traffic(canaryRequests), quantile: canary, query: 'c' }, stable: { traffic: traffic(4500), quantile: stable, query: 's' } }, ctx);

  it('latency max 2 s: 2.000 s passes, 2.001 s fails', () => {
    expect(verdictOf(lat(2, 1.9), '≤ 2s')).toBe('pass');
    expect(verdictOf(lat(2.001, 1.9), '≤ 2s')).toBe('fail');
  });

  it('latency maxRatio 1.5: 1.5× passes, 1.501× fails', () => {
    expect(verdictOf(lat(0.3, 0.2), '× stable')).toBe('pass');
    expect(verdictOf(lat(0.3002, 0.2), '× stable')).toBe('fail');
  });

  it('latency minRequests 20: 19 canary requests are inconclusive, 20 are judged', () => {
    expect(lat(0.25, 0.2, 19).every((r) => r.verdict === 'inconclusive')).toBe(true);
    expect(lat(0.25, 0.2, 20).every((r) => r.verdict === 'pass')).toBe(true);
  });
});
