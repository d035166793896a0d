// The header-match rule of the Gateway API router, pure: the rule that sends only requests
// carrying the policy's routing header to the canary (smoke tests, and header routing on raises),
// and the one fenced JSON Patch that adds it while the canary's weight stays 0. Removal is part of
// every write to 0% and every stop (httproute-shape.ts restoreOps), so it never outlives the canary.

import {
  BREAKING_FILTERS,
  fenceTests,
  HEADER_RULE_ANNOTATION,
  HEADER_RULE_NAME,
  setAnnotations,
  testRefs,
  type BackendRef,
  type HeaderMatch,
  type HttpRoute,
  type JsonPatchOp,
  type PrepareInput,
  type RouteRule,
  type RouteShape,
} from './httproute-shape.js';

/** The header-match rule: the stable rule's matches, each also requiring the header, to the canary alone. */
export function headerRule(route: HttpRoute, shape: RouteShape, input: Pick<PrepareInput, 'canaryService' | 'canaryPort' | 'headerRouting'>): RouteRule {
  const stableRule = (route.spec?.rules ?? [])[shape.ruleIndex] as RouteRule;
  const header: HeaderMatch = { type: 'Exact', name: input.headerRouting?.header ?? '', value: input.headerRouting?.value ?? 'always' };
  const matches = (stableRule.matches?.length ? stableRule.matches : [{ path: { type: 'PathPrefix', value: '/' } }]).map((m) => ({
    ...m,
    headers: [...(m.headers ?? []).filter((h) => h.name.toLowerCase() !== header.name.toLowerCase()), header],
  }));
  const stable = shape.backendRefs[shape.stableIndex] as BackendRef;
  const filters = (stableRule.filters ?? []).filter((f) => !(f.type in BREAKING_FILTERS));
  return {
    name: HEADER_RULE_NAME,
    matches,
    ...(filters.length ? { filters } : {}),
    backendRefs: [{ kind: 'Service', name: input.canaryService, port: input.canaryPort ?? stable.port ?? 80, weight: 1 }],
  };
}

/**
 * Header routing on with the weights untouched (the smoke phase at 0%): the rule appended and
 * marked as ours, fenced like a raise (rollout id, "not stopped", the holder's token) and on the
 * stable rule's backendRefs as read, so it never lands after a stop or on a route that moved.
 * Null when our rule is already there (a raise keeps it; a second call changes nothing).
 */
export function headerRoutingPatch(shape: RouteShape, rule: RouteRule, rolloutId: string, token?: string): JsonPatchOp[] | null {
  if (shape.headerRuleIndex !== null) return null;
  return [
    ...fenceTests(shape, rolloutId, token),
    testRefs(shape),
    { op: 'add', path: '/spec/rules/-', value: rule },
    ...setAnnotations(shape, { [HEADER_RULE_ANNOTATION]: HEADER_RULE_NAME }),
  ];
}
