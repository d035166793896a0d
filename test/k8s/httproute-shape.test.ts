// The pure half of the Gateway API router: which routes are refused (and how precisely), and what
// each JSON Patch does to a route, applied as the API server applies it (a failed test writes nothing).

import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { routeStateOf, shapeForStop } from '../../src/k8s/gateway-router.js';
import {
  BACKEND_REF_ANNOTATION,
  canaryPercent,
  claimPatch,
  fenceFailure,
  HEADER_RULE_ANNOTATION,
  HEADER_RULE_NAME,
  needsStop,
  parseRoute,
  preparePatch,
  STABLE_WEIGHT_ANNOTATION,
  stopPatch,
  weightPatch,
  type HttpRoute,
  type RouteRule,
} from '../../src/k8s/httproute-shape.js';
import { headerRule, headerRoutingPatch } from '../../src/k8s/httproute-header-rule.js';
import { FENCE_ANNOTATION, ROLLOUT_ID_ANNOTATION, STOP_ANNOTATION, TARGET_LABEL } from '../../src/k8s/labels.js';
import { applyPatch, PatchTestFailed } from '../support/json-patch.js';

const names = { stableService: 'checkout', canaryService: 'checkout-canary' };
const ID = 'checkout-20260101T000000Z';

/** A route as the API server returns it (defaults filled: kind Service, weight 1, PathPrefix /). */
function route(rules: RouteRule[], annotations?: Record<string, string>): HttpRoute {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'checkout', namespace: 'shop', resourceVersion: '41', ...(annotations && { annotations }) },
    spec: { parentRefs: [{ name: 'public' }], hostnames: ['shop.example.com'], rules },
  };
}
const stableRule = (extra: Partial<RouteRule> = {}): RouteRule => ({
  matches: [{ path: { type: 'PathPrefix', value: '/' } }],
  backendRefs: [{ kind: 'Service', name: 'checkout', port: 80, weight: 1 }],
  ...extra,
});
const other: RouteRule = { matches: [{ path: { type: 'PathPrefix', value: '/static' } }], backendRefs: [{ kind: 'Service', name: 'assets', port: 80, weight: 1 }] };

function refusal(r: HttpRoute): string {
  try {
    parseRoute(r, names);
  } catch (err) {
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).kind).toBe('invalid-input');
    return (err as Error).message;
  }
  throw new Error('the route was accepted');
}

/** prepare, then the fenced weights, as the router would apply them in order. */
function prepared(r: HttpRoute): HttpRoute {
  return applyPatch(r, preparePatch(r, parseRoute(r, names), { rolloutId: ID, target: 'checkout', canaryService: 'checkout-canary' }));
}
function weighted(r: HttpRoute, w: number, headerRouting?: { header: string; value?: string }): HttpRoute {
  const shape = parseRoute(r, names);
  const smoke = headerRouting && w > 0 ? headerRule(r, shape, { canaryService: 'checkout-canary', headerRouting }) : undefined;
  const ops = weightPatch(shape, w, ID, smoke);
  return ops ? applyPatch(r, ops) : r;
}

describe('refuses a route it does not understand, naming the route, the rule and why', () => {
  it('several rules sending to the stable Service', () => {
    const msg = refusal(route([stableRule(), other, stableRule({ matches: [{ path: { type: 'PathPrefix', value: '/api' } }] })]));
    expect(msg).toBe(
      'HTTPRoute shop/checkout: spec.rules[2]: it also sends to the stable Service checkout, as spec.rules[0] does; we split exactly one rule, so give the canary its own route or merge the rules; nothing was changed',
    );
  });

  it.each([
    ['RequestMirror', 'RequestMirror filter copies the traffic elsewhere'],
    ['RequestRedirect', 'RequestRedirect filter answers the request itself'],
    ['URLRewrite', 'URLRewrite filter rewrites requests for every backend'],
    ['ExtensionRef', 'ExtensionRef filter has implementation-specific effects'],
  ])('a %s filter beside the backendRefs', (type, why) => {
    const msg = refusal(route([other, stableRule({ filters: [{ type }] })]));
    expect(msg).toContain('HTTPRoute shop/checkout: spec.rules[1].filters: ');
    expect(msg).toContain(why);
  });

  it('keeps header modifier filters (they apply to both backends alike)', () => {
    const r = route([stableRule({ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: 'b' }] } }] })]);
    expect(parseRoute(r, names).ruleIndex).toBe(0);
  });

  it('a backendRef to the stable Service in another namespace', () => {
    const msg = refusal(route([{ backendRefs: [{ kind: 'Service', name: 'checkout', namespace: 'payments', port: 80, weight: 1 }] }]));
    expect(msg).toBe(
      'HTTPRoute shop/checkout: spec.rules[0].backendRefs[0]: it sends to Service checkout in namespace payments, not the stable Service in shop; we split only a Service in the route\'s own namespace; nothing was changed',
    );
  });

  it('a canary backendRef we did not add', () => {
    const msg = refusal(route([stableRule({ backendRefs: [{ kind: 'Service', name: 'checkout', port: 80, weight: 90 }, { kind: 'Service', name: 'checkout-canary', port: 80, weight: 10 }] })]));
    expect(msg).toContain('spec.rules[0].backendRefs[1]: it already sends to the canary Service checkout-canary, and canary-cli did not add it');
  });

  it('a rule sending to the canary alone', () => {
    const msg = refusal(route([stableRule(), { name: 'beta', backendRefs: [{ kind: 'Service', name: 'checkout-canary', port: 80, weight: 1 }] }]));
    expect(msg).toContain('spec.rules[1] (beta).backendRefs[0]: it sends to the canary Service checkout-canary and not to stable checkout');
  });

  it('a third backend in the stable rule, filters on the stable backendRef, no port, no rule to split', () => {
    expect(refusal(route([stableRule({ backendRefs: [{ kind: 'Service', name: 'checkout', port: 80 }, { kind: 'Service', name: 'legacy', port: 80 }] })]))).toContain(
      'spec.rules[0].backendRefs[1]: it also sends to Service legacy',
    );
    expect(refusal(route([stableRule({ backendRefs: [{ kind: 'Service', name: 'checkout', port: 80, filters: [{ type: 'RequestHeaderModifier' }] }] })]))).toContain(
      'spec.rules[0].backendRefs[0].filters: filters on the stable backendRef (RequestHeaderModifier) would not apply to the canary',
    );
    expect(refusal(route([stableRule({ backendRefs: [{ kind: 'Service', name: 'checkout' }] })]))).toContain('the stable backendRef has no port');
    expect(refusal(route([other]))).toContain('spec.rules: no rule sends to the stable Service checkout');
  });

  it('a backendRef of another kind named like stable is not stable', () => {
    expect(refusal(route([{ backendRefs: [{ group: 'example.com', kind: 'Backend', name: 'checkout', port: 80 }] }]))).toContain('no rule sends to the stable Service');
  });

  it('a rule carrying our name without our mark', () => {
    expect(refusal(route([stableRule(), { name: HEADER_RULE_NAME, backendRefs: [{ kind: 'Service', name: 'assets', port: 80 }] }]))).toContain(
      `spec.rules[1] (${HEADER_RULE_NAME}): a rule named ${HEADER_RULE_NAME} exists but the route does not mark it as ours`,
    );
  });
});

describe('patches', () => {
  it('prepare adds our marks and our backendRef at weight 0; raises set the pair summing to 100', () => {
    const r0 = route([other, stableRule()]);
    const r1 = prepared(r0);
    expect(r1.metadata?.labels).toEqual({ [TARGET_LABEL]: 'checkout' });
    expect(r1.metadata?.annotations).toEqual({
      [ROLLOUT_ID_ANNOTATION]: ID,
      [STOP_ANNOTATION]: '',
      [BACKEND_REF_ANNOTATION]: 'checkout-canary',
      [STABLE_WEIGHT_ANNOTATION]: '1',
    });
    expect(r1.spec?.rules?.[1]?.backendRefs).toEqual([
      { kind: 'Service', name: 'checkout', port: 80, weight: 1 },
      { kind: 'Service', name: 'checkout-canary', port: 80, weight: 0 },
    ]);
    expect(canaryPercent(parseRoute(r1, names))).toBe(0);
    const r2 = weighted(r1, 25);
    expect(r2.spec?.rules?.[1]?.backendRefs?.map((b) => b.weight)).toEqual([75, 25]);
    expect(canaryPercent(parseRoute(r2, names))).toBe(25);
    expect(routeStateOf(r2, 'checkout-canary')).toEqual({ name: 'checkout', weight: 25, overrides: [] });
    // The other rule is never touched.
    expect(r2.spec?.rules?.[0]).toEqual(other);
  });

  it('every raise tests the rollout id, the stop marker and the backendRefs as read', () => {
    const r1 = weighted(prepared(route([stableRule()])), 10);
    const ops = weightPatch(parseRoute(r1, names), 25, ID) ?? [];
    expect(ops.slice(0, 3)).toEqual([
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1rollout-id', value: ID },
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1stop', value: '' },
      { op: 'test', path: '/spec/rules/0/backendRefs', value: r1.spec?.rules?.[0]?.backendRefs },
    ]);
    // A stop landed after the read: the raise fails its test and writes nothing.
    const stopped = applyPatch(r1, stopPatch(shapeForStop(r1), 'canary rollback by alice'));
    expect(() => applyPatch(stopped, ops)).toThrow(PatchTestFailed);
    // Only the weights moved (a raise of another writer): still refused, then rebuilt from a new read.
    const moved = weighted(r1, 50);
    expect(() => applyPatch(moved, ops)).toThrow(PatchTestFailed);
    expect(weighted(moved, 25).spec?.rules?.[0]?.backendRefs?.map((b) => b.weight)).toEqual([75, 25]);
  });

  it('the fence names a stop or another rollout', () => {
    const r1 = prepared(route([stableRule()]));
    expect(fenceFailure(parseRoute(r1, names), ID)).toBeNull();
    expect(fenceFailure(parseRoute(r1, names), 'other')).toBe(`it now belongs to rollout ${ID}`);
    const stopped = applyPatch(r1, stopPatch(shapeForStop(r1), 'canary rollback by alice'));
    expect(fenceFailure(parseRoute(stopped, names), ID)).toBe('canary rollback by alice');
  });

  it('0% restores the rule to stable alone with its original weight, header rule and our marks removed', () => {
    const r0 = route([stableRule({ backendRefs: [{ kind: 'Service', name: 'checkout', port: 80, weight: 7 }] })], { team: 'shop' });
    const r1 = prepared(r0);
    // Header routing starts with the first raise (prepare runs before the canary has pods).
    expect(r1.spec?.rules).toHaveLength(1);
    const r10 = weighted(r1, 10, { header: 'X-Canary' });
    expect(r10.metadata?.annotations?.[HEADER_RULE_ANNOTATION]).toBe(HEADER_RULE_NAME);
    expect(r10.spec?.rules?.[1]).toEqual({
      name: HEADER_RULE_NAME,
      matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'X-Canary', value: 'always' }] }],
      backendRefs: [{ kind: 'Service', name: 'checkout-canary', port: 80, weight: 1 }],
    });
    expect(routeStateOf(r10, 'checkout-canary').overrides).toEqual([`spec.rules[1] (${HEADER_RULE_NAME}: header match to the canary)`]);
    const r100 = weighted(weighted(r10, 50, { header: 'X-Canary' }), 100, { header: 'X-Canary' });
    expect(r100.spec?.rules).toHaveLength(2);
    expect(r100.spec?.rules?.[0]?.backendRefs?.map((b) => b.weight)).toEqual([0, 100]);
    const r2 = weighted(r100, 0);
    expect(r2.spec?.rules).toEqual(r0.spec?.rules);
    expect(r2.metadata?.annotations).toEqual({ team: 'shop', [ROLLOUT_ID_ANNOTATION]: ID, [STOP_ANNOTATION]: '', [STABLE_WEIGHT_ANNOTATION]: '7' });
    expect(routeStateOf(r2, 'checkout-canary')).toEqual({ name: 'checkout', weight: 0, overrides: [] });
    expect(weightPatch(parseRoute(r2, names), 0, ID)).toBeNull();
  });

  it('the header rule copies every match of the stable rule with the header added, and keeps header modifiers', () => {
    const r0 = route([
      stableRule({
        matches: [{ path: { type: 'Exact', value: '/pay' }, method: 'POST' }, { path: { type: 'PathPrefix', value: '/api' }, headers: [{ type: 'Exact', name: 'x-canary', value: 'x' }] }],
        filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-from', value: 'gw' }] } }],
      }),
    ]);
    const rule = weighted(prepared(r0), 10, { header: 'X-Canary', value: 'smoke' }).spec?.rules?.[1];
    expect(rule?.matches).toEqual([
      { path: { type: 'Exact', value: '/pay' }, method: 'POST', headers: [{ type: 'Exact', name: 'X-Canary', value: 'smoke' }] },
      { path: { type: 'PathPrefix', value: '/api' }, headers: [{ type: 'Exact', name: 'X-Canary', value: 'smoke' }] },
    ]);
    expect(rule?.filters).toEqual([{ type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-from', value: 'gw' }] } }]);
  });

  it('header routing at 0% (smoke tests): our rule added with the weights untouched, fenced like a raise, kept by the raise, removed by a stop', () => {
    const r0 = route([other, stableRule()]);
    const r1 = prepared(r0);
    const header = { header: 'X-Canary', value: 'smoke' };
    const on = (r: HttpRoute) => {
      const shape = parseRoute(r, names);
      return headerRoutingPatch(shape, headerRule(r, shape, { canaryService: 'checkout-canary', headerRouting: header }), ID);
    };
    const ops = on(r1) ?? [];
    const smoke = applyPatch(r1, ops);
    expect(smoke.spec?.rules?.slice(0, 2)).toEqual(r1.spec?.rules);
    expect(smoke.spec?.rules?.[2]).toEqual({
      name: HEADER_RULE_NAME,
      matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'X-Canary', value: 'smoke' }] }],
      backendRefs: [{ kind: 'Service', name: 'checkout-canary', port: 80, weight: 1 }],
    });
    expect(smoke.metadata?.annotations?.[HEADER_RULE_ANNOTATION]).toBe(HEADER_RULE_NAME);
    expect(routeStateOf(smoke, 'checkout-canary')).toEqual({ name: 'checkout', weight: 0, overrides: [`spec.rules[2] (${HEADER_RULE_NAME}: header match to the canary)`] });
    // Already on: nothing to write; the first raise keeps the one rule and moves only the weights.
    expect(on(smoke)).toBeNull();
    const r10 = weighted(smoke, 10, header);
    expect(r10.spec?.rules?.filter((r) => r.name === HEADER_RULE_NAME)).toHaveLength(1);
    expect(r10.spec?.rules?.[1]?.backendRefs?.map((b) => b.weight)).toEqual([90, 10]);
    // A stop landed after the read: the rule is not added.
    const stopped = applyPatch(r1, stopPatch(shapeForStop(r1), 'canary rollback by alice'));
    expect(() => applyPatch(stopped, ops)).toThrow(PatchTestFailed);
    // A stop after it removes the rule with our backendRef, in one patch.
    expect(applyPatch(smoke, stopPatch(shapeForStop(smoke), 'smoke failed')).spec?.rules).toEqual(r0.spec?.rules);
    expect(applyPatch(smoke, weightPatch(parseRoute(smoke, names), 0, ID) ?? []).spec?.rules).toEqual(r0.spec?.rules);
  });

  it('a stop writes the marker and stable alone in one patch, keeps the first marker, and is idempotent', () => {
    const r0 = route([other, stableRule()]);
    const live = weighted(prepared(r0), 50, { header: 'X-Canary' });
    const s1 = shapeForStop(live);
    expect(needsStop(s1)).toBe(true);
    const stopped = applyPatch(live, stopPatch(s1, 'first'));
    expect(stopped.spec?.rules).toEqual(r0.spec?.rules);
    expect(stopped.metadata?.annotations?.[STOP_ANNOTATION]).toBe('first');
    expect(stopped.metadata?.annotations?.[BACKEND_REF_ANNOTATION]).toBeUndefined();
    expect(stopped.metadata?.annotations?.[HEADER_RULE_ANNOTATION]).toBeUndefined();
    expect(needsStop(shapeForStop(stopped))).toBe(false);
    // A restored route without a marker (a promoted rollout) still gets one, so no late raise lands.
    const promoted = weighted(weighted(prepared(r0), 100), 0);
    expect(needsStop(shapeForStop(promoted))).toBe(true);
    expect(applyPatch(promoted, stopPatch(shapeForStop(promoted), 'second')).metadata?.annotations?.[STOP_ANNOTATION]).toBe('second');
  });

  it('prepare on a route left mid-promotion by another rollout puts the canary at 0 and stable back', () => {
    const r0 = route([stableRule()]);
    const left = weighted(prepared(r0), 100);
    const again = applyPatch(left, preparePatch(left, parseRoute(left, names), { rolloutId: 'next', target: 'checkout', canaryService: 'checkout-canary' }));
    expect(again.spec?.rules?.[0]?.backendRefs?.map((b) => [b.name, b.weight])).toEqual([
      ['checkout', 1],
      ['checkout-canary', 0],
    ]);
    expect(again.metadata?.annotations?.[ROLLOUT_ID_ANNOTATION]).toBe('next');
    // prepare is pinned to the resourceVersion it read.
    expect(() => applyPatch({ ...left, metadata: { ...left.metadata, resourceVersion: '99' } }, preparePatch(left, parseRoute(left, names), { rolloutId: 'n', target: 'checkout', canaryService: 'checkout-canary' }))).toThrow(PatchTestFailed);
  });
});

// Issue 16 item 5 on the Gateway API router: the fence token is the holder (identity + epoch), not
// only the rollout id, which a --resume shares with the run it replaces.
describe('the fence token of the process driving the rollout', () => {
  const T1 = 'run 1 attempt 1 pid 7 #aaaaaa epoch 0';
  const T2 = 'run 2 attempt 1 pid 9 #bbbbbb epoch 1';
  const preparedBy = (r: HttpRoute, token: string) =>
    applyPatch(r, preparePatch(r, parseRoute(r, names), { rolloutId: ID, target: 'checkout', canaryService: 'checkout-canary', fenceToken: token }));
  const raise = (r: HttpRoute, w: number, token?: string) => applyPatch(r, weightPatch(parseRoute(r, names), w, ID, undefined, token) ?? []);

  it('prepare writes the token with the marks; every raise and the 0% write test it', () => {
    const r1 = preparedBy(route([stableRule()]), T1);
    expect(r1.metadata?.annotations?.[FENCE_ANNOTATION]).toBe(T1);
    // Also on a route that had no annotations at all (the map is added whole).
    expect(r1.metadata?.annotations).toMatchObject({ [ROLLOUT_ID_ANNOTATION]: ID, [STOP_ANNOTATION]: '' });
    const r10 = raise(r1, 10, T1);
    expect(weightPatch(parseRoute(r10, names), 25, ID, undefined, T1)?.slice(0, 3)).toEqual([
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1rollout-id', value: ID },
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1stop', value: '' },
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1holder', value: T1 },
    ]);
    expect(weightPatch(parseRoute(r10, names), 0, ID, undefined, T1)?.[2]).toEqual({ op: 'test', path: '/metadata/annotations/canary-cli.dev~1holder', value: T1 });
  });

  it("header routing at 0% tests the holder like a raise: a predecessor's smoke-phase write after a --resume's claim fails", () => {
    const r1 = preparedBy(route([stableRule()]), T1);
    const shape = parseRoute(r1, names);
    const stale = headerRoutingPatch(shape, headerRule(r1, shape, { canaryService: 'checkout-canary', headerRouting: { header: 'X-Canary' } }), ID, T1) ?? [];
    expect(stale.slice(0, 3)).toEqual([
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1rollout-id', value: ID },
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1stop', value: '' },
      { op: 'test', path: '/metadata/annotations/canary-cli.dev~1holder', value: T1 },
    ]);
    expect(applyPatch(r1, stale).spec?.rules?.[1]?.name).toBe(HEADER_RULE_NAME);
    const claimed = applyPatch(r1, claimPatch(r1, T2));
    expect(() => applyPatch(claimed, stale)).toThrow(PatchTestFailed);
  });

  it("a --resume claims the route: the predecessor's raise (same rollout id) fails its test and the fence names the new holder", () => {
    const r10 = raise(preparedBy(route([stableRule()]), T1), 10, T1);
    // The predecessor builds its raise from this read, then the successor's claim lands.
    const stale = weightPatch(parseRoute(r10, names), 50, ID, undefined, T1) ?? [];
    const claimed = applyPatch(r10, claimPatch(r10, T2));
    expect(claimed.metadata?.annotations?.[FENCE_ANNOTATION]).toBe(T2);
    const r25 = raise(claimed, 25, T2);
    expect(() => applyPatch(r25, stale)).toThrow(PatchTestFailed);
    expect(fenceFailure(parseRoute(r25, names), ID, T1)).toBe(`it now belongs to ${T2} (the process driving rollout ${ID} now)`);
    expect(fenceFailure(parseRoute(r25, names), ID, T2)).toBeNull();
    // Without a token only the rollout id and the stop are fenced (as before the token existed).
    expect(fenceFailure(parseRoute(r25, names), ID)).toBeNull();
    expect(r25.spec?.rules?.[0]?.backendRefs?.map((b) => b.weight)).toEqual([75, 25]);
  });

  it('a claim is pinned to the resourceVersion it read; a route prepared without a token gets one with the first fenced raise', () => {
    const r1 = prepared(route([stableRule()]));
    expect(r1.metadata?.annotations?.[FENCE_ANNOTATION]).toBeUndefined();
    expect(() => applyPatch({ ...r1, metadata: { ...r1.metadata, resourceVersion: '99' } }, claimPatch(r1, T2))).toThrow(PatchTestFailed);
    expect(applyPatch(route([stableRule()]), claimPatch(route([stableRule()]), T2)).metadata?.annotations).toEqual({ [FENCE_ANNOTATION]: T2 });
    expect(raise(r1, 10, T1).metadata?.annotations?.[FENCE_ANNOTATION]).toBe(T1);
  });
});
