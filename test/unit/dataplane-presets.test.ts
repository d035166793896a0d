import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRESETS_BY_NAME, windowCount } from '../../src/analysis/presets.js';
import { renderQuery, unknownPlaceholders, type Side } from '../../src/analysis/promql-template.js';
import { loadPolicy } from '../../src/policy/loader.js';
import { CHECKOUT_TARGET } from '../support/preset-queries.js';

// The envoy-gateway and traefik presets' queries, rendered for checkout in shop exactly as a
// rollout sends them. Counters are counted by windowCount() (the one definition of a window's
// count, shared with the other presets), so only the series it is given is spelled out here.

const target = CHECKOUT_TARGET;
const counted = (series: string) => windowCount(series).replaceAll('{{window}}', '1m');

function render(preset: 'envoy-gateway' | 'traefik', query: string, side: Side): string {
  const p = PRESETS_BY_NAME[preset];
  return renderQuery(p.queries[query] ?? '', target, { side, selector: p.selectors[side], windowPromQL: '1m', quantile: 0.95 });
}

describe('envoy-gateway preset', () => {
  const canary = 'envoy_cluster_name=~"service/shop/checkout-canary/[0-9]+(/[a-z0-9-]+)?"';
  const stable = 'envoy_cluster_name=~"service/shop/checkout/[0-9]+(/[a-z0-9-]+)?"';

  it('counts final responses of each side\'s own cluster (mergeBackends: service/<ns>/<name>/<port>/<protocol>)', () => {
    expect(render('envoy-gateway', 'requests', 'canary')).toBe(`sum(${counted(`envoy_cluster_upstream_rq_xx{${canary}}`)})`);
    expect(render('envoy-gateway', 'requests', 'stable')).toBe(`sum(${counted(`envoy_cluster_upstream_rq_xx{${stable}}`)})`);
    expect(render('envoy-gateway', 'errors', 'canary')).toBe(
      `sum(${counted(`envoy_cluster_upstream_rq_xx{${canary},envoy_response_code_class="5"}`)}) or vector(0)`,
    );
    expect(render('envoy-gateway', 'errors', 'stable')).toBe(
      `sum(${counted(`envoy_cluster_upstream_rq_xx{${stable},envoy_response_code_class="5"}`)}) or vector(0)`,
    );
  });

  it('gives P95 in seconds from Envoy\'s millisecond histogram, and declares the bucket unit for the judges', () => {
    expect(render('envoy-gateway', 'latency', 'canary')).toBe(
      `histogram_quantile(0.95, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{${canary}}[1m]))) / 1000`,
    );
    expect(render('envoy-gateway', 'latencyBuckets', 'stable')).toBe(`sum by (le) (${counted(`envoy_cluster_upstream_rq_time_bucket{${stable}}`)})`);
    expect(PRESETS_BY_NAME['envoy-gateway'].latencyBucketsPerSecond).toBe(1000);
  });

  it('never lets the stable pattern match the canary\'s cluster, or another namespace\'s', () => {
    const pattern = (side: Side) => new RegExp(`^(?:${/"(.*)"/.exec(renderQuery(PRESETS_BY_NAME['envoy-gateway'].selectors[side], target, { side, selector: '', windowPromQL: '1m' }))![1]!})$`);
    expect(pattern('stable').test('service/shop/checkout/80/http')).toBe(true);
    expect(pattern('stable').test('service/shop/checkout/8080')).toBe(true);
    expect(pattern('stable').test('service/shop/checkout/8080/grpc-web')).toBe(true);
    expect(pattern('stable').test('service/shop/checkout-canary/80/http')).toBe(false);
    expect(pattern('stable').test('service/staging/checkout/80/http')).toBe(false);
    // The default layout (both backends in the route rule's cluster) is not matched at all.
    expect(pattern('stable').test('httproute/shop/checkout/rule/0')).toBe(false);
    expect(pattern('canary').test('service/shop/checkout-canary/80/http')).toBe(true);
    expect(pattern('canary').test('service/shop/checkout/80/http')).toBe(false);
  });
});

describe('traefik preset', () => {
  const canary =
    'service=~"shop-checkout-checkout-[a-z0-9]+-canary@kubernetesingressnginx|httproute-shop-.+-svc-shop-checkout-canary-[0-9]+@kubernetesgateway|shop-checkout-canary-http-[0-9]+@kubernetesgateway"';
  const stable =
    'service=~"shop-checkout-checkout-[a-z0-9]+@kubernetesingressnginx|httproute-shop-.+-svc-shop-checkout-[0-9]+@kubernetesgateway|shop-checkout-http-[0-9]+@kubernetesgateway"';

  it('counts requests and 5xx of each side\'s Traefik service', () => {
    expect(render('traefik', 'requests', 'canary')).toBe(`sum(${counted(`traefik_service_requests_total{${canary}}`)})`);
    expect(render('traefik', 'requests', 'stable')).toBe(`sum(${counted(`traefik_service_requests_total{${stable}}`)})`);
    expect(render('traefik', 'errors', 'canary')).toBe(`sum(${counted(`traefik_service_requests_total{${canary},code=~"5.."}`)}) or vector(0)`);
    expect(render('traefik', 'errors', 'stable')).toBe(`sum(${counted(`traefik_service_requests_total{${stable},code=~"5.."}`)}) or vector(0)`);
  });

  it('reads P95 and bucket counts from the seconds histogram as they are', () => {
    expect(render('traefik', 'latency', 'stable')).toBe(
      `histogram_quantile(0.95, sum by (le) (rate(traefik_service_request_duration_seconds_bucket{${stable}}[1m])))`,
    );
    expect(render('traefik', 'latencyBuckets', 'canary')).toBe(`sum by (le) (${counted(`traefik_service_request_duration_seconds_bucket{${canary}}`)})`);
    expect(PRESETS_BY_NAME.traefik.latencyBucketsPerSecond).toBeUndefined();
  });

  it('tells the sides apart under both providers, and never matches the other side', () => {
    const pattern = (side: Side) => new RegExp(`^(?:${/"(.*)"/.exec(renderQuery(PRESETS_BY_NAME.traefik.selectors[side], target, { side, selector: '', windowPromQL: '1m' }))![1]!})$`);
    const names = {
      nginxStable: 'shop-checkout-checkout-80@kubernetesingressnginx',
      nginxStableNamedPort: 'shop-checkout-checkout-http@kubernetesingressnginx',
      nginxCanary: 'shop-checkout-checkout-80-canary@kubernetesingressnginx',
      gatewayStable: 'httproute-shop-checkout-gw-traefik-traefik-ep-web-0-svc-shop-checkout-0@kubernetesgateway',
      gatewayCanary: 'httproute-shop-checkout-gw-traefik-traefik-ep-web-0-svc-shop-checkout-canary-1@kubernetesgateway',
      gatewayStableBefore376: 'shop-checkout-http-80@kubernetesgateway',
      gatewayCanaryBefore376: 'shop-checkout-canary-http-80@kubernetesgateway',
      otherIngress: 'shop-cart-cart-80@kubernetesingressnginx',
      otherNamespace: 'staging-checkout-checkout-80@kubernetesingressnginx',
      crd: 'shop-checkout-80@kubernetescrd',
    };
    const matches = (side: Side) => Object.entries(names).filter(([, n]) => pattern(side).test(n)).map(([k]) => k);
    expect(matches('stable')).toEqual(['nginxStable', 'nginxStableNamedPort', 'gatewayStable', 'gatewayStableBefore376']);
    expect(matches('canary')).toEqual(['nginxCanary', 'gatewayCanary', 'gatewayCanaryBefore376']);
  });
});

describe('policies choosing the new presets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'canary-dataplane-policy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['envoy-gateway', 1000],
    ['traefik', undefined],
  ] as const)('loads preset %s with its queries, selectors and bucket unit', (preset, perSecond) => {
    const path = join(dir, `${preset}.yaml`);
    writeFileSync(path, `apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  analysis:\n    preset: ${preset}\n`);
    const policy = loadPolicy(path);
    expect(policy.analysis.preset).toBe(preset);
    expect(policy.analysis.selectors).toEqual(PRESETS_BY_NAME[preset].selectors);
    expect(policy.analysis.queries['requests']).toBe(PRESETS_BY_NAME[preset].queries['requests']);
    expect(policy.analysis.latencyBucketsPerSecond).toBe(perSecond);
    for (const template of [...Object.values(policy.analysis.queries), ...Object.values(policy.analysis.selectors)]) {
      expect(unknownPlaceholders(template)).toEqual([]);
    }
  });
});
