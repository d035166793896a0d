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
