import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { resolutionAt } from '../../src/doctor/bucket-resolution.js';
import { canWork, type Finding } from '../../src/doctor/finding.js';
import { ingressPitfalls, type IngressLike } from '../../src/doctor/ingress-pitfalls.js';
import { httpRouteFor } from '../../src/doctor/migration.js';
import { ownershipLabels } from '../../src/k8s/labels.js';
import { targetNames } from '../../src/policy/policy.js';

// The ingress-nginx pitfalls doctor reads off a namespace's Ingresses, each built here on its own
// against a clean namespace that has none of them.

const names = targetNames('checkout', {});
const NGINX = 'nginx.ingress.kubernetes.io/';

function ingress(name: string, opts: { service?: string; host?: string; path?: string; pathType?: string; annotations?: Record<string, string>; labels?: Record<string, string>; className?: string; port?: { number?: number; name?: string } } = {}): IngressLike {
  return {
    metadata: { name, ...(opts.labels && { labels: opts.labels }), ...(opts.annotations && { annotations: opts.annotations }) },
    spec: {
      ingressClassName: opts.className ?? 'nginx',
      rules: [{ host: opts.host ?? 'shop.example.com', http: { paths: [{ path: opts.path ?? '/', pathType: opts.pathType ?? 'Prefix', backend: { service: { name: opts.service ?? 'checkout', port: opts.port ?? { number: 80 } } } as never }] } }],
    },
  };
}

const stable = ingress('checkout');
const ours = (o: Parameters<typeof ingress>[1] = {}) =>
  ingress('checkout-canary', { service: 'checkout-canary', labels: ownershipLabels('checkout'), annotations: { [`${NGINX}canary`]: 'true', [`${NGINX}canary-weight`]: '25' }, ...o });

function run(...ingresses: IngressLike[]): Finding[] {
  return ingressPitfalls({ target: 'checkout', namespace: 'shop', names, ingresses });
}
const failed = (findings: Finding[]) => findings.filter((f) => f.verdict === 'fail').map((f) => f.check);

describe('doctor: ingress-nginx pitfalls', () => {
  it('passes a namespace with the stable Ingress alone, and with our matching canary Ingress', () => {
    expect(failed(run(stable))).toEqual([]);
    expect(run(stable).find((f) => f.check === 'canary-ingress')?.detail).toContain('creates it at 0% as a copy of those 1 path(s)');
    expect(failed(run(stable, ours()))).toEqual([]);
    expect(canWork(run(stable, ours()))).toBe(true);
  });

  it.each([
    ['path', { path: '/shop' }, 'shop.example.com /shop (Prefix) match no path of checkout'],
    ['pathType', { pathType: 'Exact' }, 'shop.example.com / (Exact) match no path of checkout'],
    ['host', { host: 'www.example.com' }, 'www.example.com / (Prefix) match no path of checkout'],
    ['class', { className: 'traefik' }, "its class traefik differs from checkout's nginx"],
  ])('fails our canary Ingress whose %s differs from the main Ingress (ingress-nginx drops it silently)', (_what, o, detail) => {
    const f = run(stable, ours(o)).find((x) => x.check === 'canary-ingress');
    expect(f?.verdict).toBe('fail');
    expect(f?.detail).toContain(detail);
    expect(f?.fix).toContain('kubectl delete ingresses.v1.networking.k8s.io checkout-canary -n shop');
  });

  it('fails a canary Ingress named like ours that we did not make', () => {
    const foreign = ingress('checkout-canary', { service: 'checkout-canary', annotations: { [`${NGINX}canary`]: 'true' } });
    expect(run(stable, foreign).find((f) => f.check === 'canary-ingress')).toMatchObject({ verdict: 'fail', detail: expect.stringContaining('not made by canary') });
  });

  it('fails another canary Ingress on the same host and path, naming it and its weight; one on another path is no rival', () => {
    const rival = ingress('checkout-experiment', { service: 'checkout-v3', annotations: { [`${NGINX}canary`]: 'true', [`${NGINX}canary-weight`]: '5' } });
    const f = run(stable, ours(), rival).find((x) => x.check === 'other-canaries');
    expect(f?.verdict).toBe('fail');
    expect(f?.detail).toContain('checkout-experiment (weight 5)');
    const elsewhere = ingress('checkout-experiment', { path: '/beta', service: 'checkout-v3', annotations: { [`${NGINX}canary`]: 'true' } });
    expect(run(stable, elsewhere).find((x) => x.check === 'other-canaries')?.verdict).toBe('ok');
  });

  it('fails the canary Service as the primary backend of another Ingress (#9458)', () => {
    const primary = ingress('checkout-preview', { host: 'preview.example.com', service: 'checkout-canary' });
    const f = run(stable, primary).find((x) => x.check === 'canary-service-primary');
    expect(f).toMatchObject({ verdict: 'fail', detail: expect.stringContaining('primary backend of checkout-preview') });
  });

  it('warns about a weight total below 100 on another canary (ignored), and fails one other than 100 on ours', () => {
    const low = ingress('checkout-experiment', { path: '/beta', service: 'checkout-v3', annotations: { [`${NGINX}canary`]: 'true', [`${NGINX}canary-weight-total`]: '50' } });
    expect(run(stable, low).find((x) => x.check === 'weight-total')).toMatchObject({ verdict: 'warn', detail: expect.stringContaining('which ingress-nginx ignores') });
    const mine = ours({ annotations: { [`${NGINX}canary`]: 'true', [`${NGINX}canary-weight`]: '10', [`${NGINX}canary-weight-total`]: '1000' } });
    expect(run(stable, mine).find((x) => x.check === 'weight-total')?.verdict).toBe('fail');
    expect(run(stable, ours()).find((x) => x.check === 'weight-total')).toBeUndefined();
  });

  it('fails a stable Ingress that sends nothing to the stable Service, or that is itself a canary', () => {
    expect(failed(run(ingress('checkout', { service: 'other' })))).toEqual(['stable-ingress']);
    expect(failed(run(ingress('checkout', { annotations: { [`${NGINX}canary`]: 'true' } })))).toEqual(['stable-ingress']);
  });
});

describe('doctor: the HTTPRoute for a move to Gateway API', () => {
  it('carries the live split as backendRef weights and header routing as a header-match rule', () => {
    const canary = ours({ annotations: { [`${NGINX}canary`]: 'true', [`${NGINX}canary-weight`]: '25', [`${NGINX}canary-by-header`]: 'X-Canary' } });
    const m = httpRouteFor({ namespace: 'shop', names, stable, canary });
    const route = parse(m.yaml) as { spec: { hostnames: string[]; rules: Array<{ matches: unknown[]; backendRefs: unknown[] }> } };
    expect(route.spec.hostnames).toEqual(['shop.example.com']);
    expect(route.spec.rules).toEqual([
      { matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ name: 'X-Canary', value: 'always' }] }], backendRefs: [{ name: 'checkout-canary', port: 80 }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'checkout', port: 80, weight: 75 }, { name: 'checkout-canary', port: 80, weight: 25 }] },
    ]);
    expect(m.notes[0]).toContain('parentRefs');
  });

  it('sends to stable alone at 0%, resolves named ports, and makes one route per host', () => {
    const twoHosts: IngressLike = { metadata: { name: 'checkout' }, spec: { rules: ['a.example.com', 'b.example.com'].map((host) => ({ host, http: { paths: [{ path: '/', pathType: 'Exact', backend: { service: { name: 'checkout', port: { name: 'http' } } } as never }] } })) } };
    const m = httpRouteFor({ namespace: 'shop', names, stable: twoHosts, servicePorts: { checkout: { http: 8080 } } });
    const docs = parseAllDocuments(m.yaml).map((d) => d.toJSON() as { metadata: { name: string }; spec: { rules: Array<{ backendRefs: unknown[]; matches: unknown[] }> } });
    expect(docs.map((d) => d.metadata.name)).toEqual(['checkout-1', 'checkout-2']);
    expect(docs[0]?.spec.rules).toEqual([{ matches: [{ path: { type: 'Exact', value: '/' } }], backendRefs: [{ name: 'checkout', port: 8080 }] }]);
    expect(m.notes.join(' ')).toContain('no canary weight is in force');
    expect(httpRouteFor({ namespace: 'shop', names, stable: twoHosts }).notes.join(' ')).toContain('port "http" could not be resolved');
  });
});

describe('doctor: latency thresholds against histogram buckets', () => {
  const nginx = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity];
  it('resolves a threshold on a boundary exactly and brackets one inside a bucket', () => {
    expect(resolutionAt(2.5, nginx)).toEqual({ exact: true });
    expect(resolutionAt(2, nginx)).toEqual({ exact: false, below: 1, above: 2.5 });
    expect(resolutionAt(20, nginx)).toEqual({ exact: false, below: 10, above: Infinity });
    expect(resolutionAt(0.001, nginx)).toEqual({ exact: false, above: 0.005 });
  });
});
