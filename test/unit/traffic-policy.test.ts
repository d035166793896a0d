// spec.traffic: which router moves the canary's traffic, and which HTTPRoute it splits.

import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { httpRouteOf, routerOf } from '../../src/k8s/router-factory.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicy } from '../../src/policy/loader.js';

const dir = mkdtempSync(join(tmpdir(), 'canary-traffic-'));
let n = 0;
/** A policy file over the shipped default, as `-p` loads it. */
function policy(traffic: string) {
  const path = join(dir, `p${(n += 1)}.yaml`);
  writeFileSync(path, ['apiVersion: canary/v1', 'kind: RolloutPolicy', 'spec:', '  interval: 1m', traffic].join('\n'));
  return loadPolicy(path);
}

function problems(traffic: string): string[] {
  try {
    policy(traffic);
  } catch (err) {
    return [...(err as CanaryError).details];
  }
  throw new Error('accepted');
}

describe('spec.traffic', () => {
  it('defaults to ingress-nginx and the target name', () => {
    const p = policy('');
    expect(p.traffic).toBeUndefined();
    expect(routerOf(p.traffic)).toBe('ingress-nginx');
    expect(httpRouteOf(p.traffic, 'checkout')).toBe('checkout');
  });

  it('chooses the Gateway API router and names the HTTPRoute', () => {
    const p = policy('  traffic: { router: gateway-api, httpRoute: shop-public }');
    expect(p.traffic).toEqual({ router: 'gateway-api', httpRoute: 'shop-public' });
    expect(httpRouteOf(p.traffic, 'checkout')).toBe('shop-public');
    expect(policy('  traffic: { router: gateway-api }').traffic).toEqual({ router: 'gateway-api' });
  });

  it('names the field and what was expected', () => {
    expect(problems('  traffic: { router: istio }').join('\n')).toContain('spec.traffic.router: expected one of "ingress-nginx", "gateway-api", got "istio"');
    expect(problems('  traffic: { router: gateway-api, httpRoute: Shop_Route }').join('\n')).toContain('spec.traffic.httpRoute: expected a Kubernetes name');
    expect(problems('  traffic: { route: x }').join('\n')).toContain('spec.traffic');
  });
});
