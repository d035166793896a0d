// The pure half of the Gateway API router: what an HTTPRoute must look like for us to split its
// traffic, where our marks are, and the one JSON Patch each weight change or stop is. No I/O.
//
// With Gateway API there is no second object: the rule that sends to the stable Service gets the
// canary Service as a second weighted backendRef. backendRefs cannot carry labels, so ownership is
// marked on the route: an annotation naming the backendRef we added (and the header-match rule we
// added, by rule name). A route whose shape we do not understand is refused, naming the route, the
// rule and why, before anything is written.

import { CanaryError } from '../errors.js';
import type { BackendRef, HttpRoute, RouteRule } from './httproute-types.js';
import { FENCE_ANNOTATION, ROLLOUT_ID_ANNOTATION, STOP_ANNOTATION, TARGET_LABEL } from './labels.js';

export type { BackendRef, HeaderMatch, HttpRoute, RouteMatch, RouteRule } from './httproute-types.js';

export const HTTPROUTE_GROUP = 'gateway.networking.k8s.io';
export const HTTPROUTE_VERSION = 'v1';
/** The canary Service we added as a backendRef of the stable rule (same namespace as the route). */
export const BACKEND_REF_ANNOTATION = 'canary-cli.dev/canary-backend-ref';
/** The name of the header-match rule we added for smoke tests, while it is there. */
export const HEADER_RULE_ANNOTATION = 'canary-cli.dev/header-rule';
/** The stable backendRef's weight before we added ours, restored when ours is removed. */
export const STABLE_WEIGHT_ANNOTATION = 'canary-cli.dev/stable-weight';
/** Rule names are sectionNames (RFC 1123 label); this one is ours. */
export const HEADER_RULE_NAME = 'canary-cli-smoke-test';
/** The stop marker's value while raises are allowed (as on the canary Ingress; annotations may hold ""). */
export const NOT_STOPPED = '';

export interface RouteNames {
  stableService: string;
  canaryService: string;
}

/** Where stable and our canary sit in a route we understand. */
export interface RouteShape {
  /** namespace/name, for messages. */
  ref: string;
  ruleIndex: number;
  /** The rule's backendRefs as read: every patch tests them whole, so a stale patch is refused. */
  backendRefs: BackendRef[];
  stableIndex: number;
  stableWeight: number;
  /** Index of our canary backendRef in the rule, null when it is not there. */
  canaryIndex: number | null;
  canaryWeight: number;
  /** Index of our header-match rule, null when it is not there. */
  headerRuleIndex: number | null;
  /** The stable weight to restore when ours is removed. */
  originalStableWeight: number;
  annotations: Record<string, string>;
  /** False when the route has no metadata.annotations at all (a patch must add the map whole). */
  hasAnnotations: boolean;
}

export function refOf(route: HttpRoute): string {
  return `${route.metadata?.namespace ?? ''}/${route.metadata?.name ?? ''}`;
}

function isService(ref: BackendRef): boolean {
  return (ref.group === undefined || ref.group === '' || ref.group === 'core') && (ref.kind === undefined || ref.kind === 'Service');
}

/** A backendRef to Service `name` in the route's namespace. */
function refersTo(ref: BackendRef, name: string, namespace: string): boolean {
  return isService(ref) && ref.name === name && (ref.namespace === undefined || ref.namespace === namespace);
}

/** A backendRef naming Service `name` in another namespace: a different Service, which we refuse to guess about. */
function elsewhere(ref: BackendRef, name: string, namespace: string): boolean {
  return isService(ref) && ref.name === name && ref.namespace !== undefined && ref.namespace !== namespace;
}

/** Rule-level filters that apply to every backend: splitting would change what they do, or they forbid backends. */
export const BREAKING_FILTERS: Record<string, string> = {
  RequestRedirect: 'a RequestRedirect filter answers the request itself, so no backend (stable or canary) would get traffic',
  RequestMirror: 'a RequestMirror filter copies the traffic elsewhere, and a weighted split would change what is mirrored',
  URLRewrite: 'a URLRewrite filter rewrites requests for every backend of the rule, and the canary may not serve the rewritten paths',
  ExtensionRef: 'an ExtensionRef filter has implementation-specific effects we cannot check',
};

function refuse(ref: string, where: string, why: string): never {
  throw new CanaryError('invalid-input', `HTTPRoute ${ref}: ${where}: ${why}; nothing was changed`);
}

/**
 * Where the stable rule, our canary backendRef and our header rule are, or a refusal naming the
 * route, the rule and why. `ours` is false when the route carries no marks of this target: then a
 * canary backendRef or a rule of our name in it was made by someone else.
 */
export function parseRoute(route: HttpRoute, names: RouteNames): RouteShape {
  const ref = refOf(route);
  const namespace = route.metadata?.namespace ?? '';
  const annotations = { ...route.metadata?.annotations };
  const markedRef = annotations[BACKEND_REF_ANNOTATION];
  const markedRule = annotations[HEADER_RULE_ANNOTATION];
  if (markedRef !== undefined && markedRef !== names.canaryService) {
    refuse(ref, `annotation ${BACKEND_REF_ANNOTATION}`, `it says we added Service ${markedRef} as the canary, not ${names.canaryService}; roll that canary back (or remove the annotation and that backendRef) first`);
  }
  const rules = route.spec?.rules ?? [];
  let ruleIndex = -1;
  let headerRuleIndex: number | null = null;
  rules.forEach((rule, i) => {
    const refs = rule.backendRefs ?? [];
    const where = `spec.rules[${i}]${rule.name ? ` (${rule.name})` : ''}`;
    if (markedRule !== undefined && rule.name === markedRule) {
      if (refs.length !== 1 || !refersTo(refs[0] as BackendRef, names.canaryService, namespace)) {
        refuse(ref, where, `the header-match rule we added was changed (it should send only to Service ${names.canaryService}); remove it or restore it`);
      }
      headerRuleIndex = i;
      return;
    }
    if (rule.name === HEADER_RULE_NAME) refuse(ref, where, `a rule named ${HEADER_RULE_NAME} exists but the route does not mark it as ours (annotation ${HEADER_RULE_ANNOTATION}); rename it`);
    refs.forEach((b, j) => {
      if (elsewhere(b, names.stableService, namespace)) {
        refuse(ref, `${where}.backendRefs[${j}]`, `it sends to Service ${b.name} in namespace ${b.namespace}, not the stable Service in ${namespace}; we split only a Service in the route's own namespace`);
      }
      if (elsewhere(b, names.canaryService, namespace)) {
        refuse(ref, `${where}.backendRefs[${j}]`, `it sends to Service ${b.name} in namespace ${b.namespace}; a canary Service of that name elsewhere is not ours to route`);
      }
    });
    const toStable = refs.some((b) => refersTo(b, names.stableService, namespace));
    const toCanary = refs.findIndex((b) => refersTo(b, names.canaryService, namespace));
    if (toCanary >= 0 && !toStable) {
      refuse(ref, `${where}.backendRefs[${toCanary}]`, `it sends to the canary Service ${names.canaryService} and not to stable ${names.stableService}; that is not a split we made`);
    }
    if (!toStable) return;
    if (ruleIndex >= 0) {
      refuse(ref, where, `it also sends to the stable Service ${names.stableService}, as spec.rules[${ruleIndex}] does; we split exactly one rule, so give the canary its own route or merge the rules`);
    }
    ruleIndex = i;
  });
  if (ruleIndex < 0) {
    refuse(ref, 'spec.rules', `no rule sends to the stable Service ${names.stableService}, so there is no traffic to split; check spec.target.stableService and spec.traffic.httpRoute`);
  }
  const rule = rules[ruleIndex] as RouteRule;
  const where = `spec.rules[${ruleIndex}]${rule.name ? ` (${rule.name})` : ''}`;
  for (const f of rule.filters ?? []) {
    const why = BREAKING_FILTERS[f.type];
    if (why) refuse(ref, `${where}.filters`, why);
  }
  const backendRefs = rule.backendRefs ?? [];
  const stableIndex = backendRefs.findIndex((b) => refersTo(b, names.stableService, namespace));
  if (backendRefs.filter((b) => refersTo(b, names.stableService, namespace)).length > 1) {
    refuse(ref, `${where}.backendRefs`, `the stable Service ${names.stableService} is listed more than once`);
  }
  const stable = backendRefs[stableIndex] as BackendRef;
  if (stable.port === undefined) refuse(ref, `${where}.backendRefs[${stableIndex}]`, 'the stable backendRef has no port (Gateway API requires one for a Service)');
  if (stable.filters?.length) {
    refuse(ref, `${where}.backendRefs[${stableIndex}].filters`, `filters on the stable backendRef (${stable.filters.map((f) => f.type).join(', ')}) would not apply to the canary; move them to the rule`);
  }
  let canaryIndex: number | null = null;
  backendRefs.forEach((b, j) => {
    if (j === stableIndex) return;
    if (!refersTo(b, names.canaryService, namespace)) {
      refuse(ref, `${where}.backendRefs[${j}]`, `it also sends to ${b.kind ?? 'Service'} ${b.name}; we split a rule between stable and canary only`);
    }
    if (markedRef === undefined) {
      refuse(ref, `${where}.backendRefs[${j}]`, `it already sends to the canary Service ${names.canaryService}, and canary-cli did not add it (no annotation ${BACKEND_REF_ANNOTATION}); remove that backendRef first`);
    }
    if (canaryIndex !== null) refuse(ref, `${where}.backendRefs`, `the canary Service ${names.canaryService} is listed more than once`);
    canaryIndex = j;
  });
  const weightOf = (b: BackendRef | undefined) => (b ? (b.weight ?? 1) : 0);
  const original = Number(annotations[STABLE_WEIGHT_ANNOTATION]);
  return {
    ref,
    ruleIndex,
    backendRefs,
    stableIndex,
    stableWeight: weightOf(stable),
    canaryIndex,
    canaryWeight: canaryIndex === null ? 0 : weightOf(backendRefs[canaryIndex]),
    headerRuleIndex,
    originalStableWeight: Number.isInteger(original) && original > 0 ? original : weightOf(stable) > 0 && canaryIndex === null ? weightOf(stable) : 1,
    annotations,
    hasAnnotations: route.metadata?.annotations !== undefined,
  };
}

/** The canary's share in percent, as the data plane applies it; null when the rule sends nowhere (all weights 0). */
export function canaryPercent(shape: RouteShape): number | null {
  if (shape.canaryIndex === null) return 0;
  const total = shape.canaryWeight + shape.stableWeight;
  if (total === 0) return null;
  return Math.round((100 * shape.canaryWeight) / total);
}

export function overridesOf(shape: RouteShape): string[] {
  return shape.headerRuleIndex === null ? [] : [`spec.rules[${shape.headerRuleIndex}] (${HEADER_RULE_NAME}: header match to the canary)`];
}

export type JsonPatchOp = { op: 'test' | 'add' | 'replace'; path: string; value: unknown } | { op: 'remove'; path: string };

/** JSON Pointer to an annotation: `/` in the key is `~1` (and `~` is `~0`), per RFC 6901. */
export function annotationPath(key: string): string {
  return `/metadata/annotations/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

export function setAnnotations(shape: RouteShape, values: Record<string, string | null>): JsonPatchOp[] {
  const present = shape.annotations;
  const ops: JsonPatchOp[] = [];
  if (!shape.hasAnnotations) {
    const add = Object.fromEntries(Object.entries(values).filter((e): e is [string, string] => e[1] !== null));
    return Object.keys(add).length ? [{ op: 'add', path: '/metadata/annotations', value: add }] : [];
  }
  for (const [key, value] of Object.entries(values)) {
    if (value === null) {
      if (present[key] !== undefined) ops.push({ op: 'remove', path: annotationPath(key) });
    } else ops.push({ op: 'add', path: annotationPath(key), value });
  }
  return ops;
}

const rulePath = (shape: RouteShape) => `/spec/rules/${shape.ruleIndex}/backendRefs`;

/** The rule's backendRefs exactly as read: the `test` that makes a patch built on a stale read fail (422). */
export function testRefs(shape: RouteShape): JsonPatchOp {
  return { op: 'test', path: rulePath(shape), value: shape.backendRefs };
}

/** Removes our header rule (tested by name, so a shifted list is refused rather than the wrong rule removed). */
function removeHeaderRule(shape: RouteShape): JsonPatchOp[] {
  if (shape.headerRuleIndex === null) return [];
  return [
    { op: 'test', path: `/spec/rules/${shape.headerRuleIndex}/name`, value: HEADER_RULE_NAME },
    { op: 'remove', path: `/spec/rules/${shape.headerRuleIndex}` },
  ];
}

/** The rule back to stable alone: our backendRef removed, stable's weight as it was before us, our header rule removed. */
function restoreOps(shape: RouteShape): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  if (shape.canaryIndex !== null) {
    ops.push(testRefs(shape), { op: 'remove', path: `${rulePath(shape)}/${shape.canaryIndex}` });
    const stableAt = shape.canaryIndex < shape.stableIndex ? shape.stableIndex - 1 : shape.stableIndex;
    if (shape.stableIndex >= 0 && shape.stableWeight !== shape.originalStableWeight) {
      ops.push({ op: 'replace', path: `${rulePath(shape)}/${stableAt}/weight`, value: shape.originalStableWeight });
    }
  }
  // The header rule's index is read after the backendRef ops, which do not move rules.
  ops.push(...removeHeaderRule(shape));
  return ops;
}

/**
 * Why a raise must not land on this route, or null when it may: another rollout prepared it,
 * another process (a `--resume`) claimed it from this one, or a stop was written on it.
 */
export function fenceFailure(shape: RouteShape, rolloutId: string, token?: string): string | null {
  const id = shape.annotations[ROLLOUT_ID_ANNOTATION];
  if (id !== undefined && id !== rolloutId) return `it now belongs to rollout ${id}`;
  const holder = shape.annotations[FENCE_ANNOTATION];
  if (token !== undefined && holder !== undefined && holder !== '' && holder !== token) return `it now belongs to ${holder} (the process driving rollout ${rolloutId} now)`;
  const stop = shape.annotations[STOP_ANNOTATION];
  if (stop && stop !== NOT_STOPPED) return stop;
  if (shape.annotations[BACKEND_REF_ANNOTATION] === undefined) return 'our canary backendRef was removed from the route';
  return null;
}

/** The rollout id, "not stopped" and, with a token, the holder (added when the route has none yet, as on the canary Ingress). */
export function fenceTests(shape: RouteShape, rolloutId: string, token?: string): JsonPatchOp[] {
  const holder = shape.annotations[FENCE_ANNOTATION];
  return [
    { op: 'test', path: annotationPath(ROLLOUT_ID_ANNOTATION), value: rolloutId },
    { op: 'test', path: annotationPath(STOP_ANNOTATION), value: NOT_STOPPED },
    ...(token === undefined ? [] : [{ op: holder === undefined || holder === '' ? 'add' : 'test', path: annotationPath(FENCE_ANNOTATION), value: token } as const]),
  ];
}

/**
 * A `--resume` taking the route over (see GatewayRouter.claim): its token written, pinned to the
 * resourceVersion as read, so from then on the predecessor's raises fail their `test`.
 */
export function claimPatch(route: HttpRoute, token: string): JsonPatchOp[] {
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: route.metadata?.resourceVersion ?? '' },
    route.metadata?.annotations === undefined ? { op: 'add', path: '/metadata/annotations', value: { [FENCE_ANNOTATION]: token } } : { op: 'add', path: annotationPath(FENCE_ANNOTATION), value: token },
  ];
}

/**
 * One fenced weight change: the rollout id, the "not stopped" marker and (with `token`) the
 * holder tested in the same patch as the weights, and the rule's backendRefs tested as read. Weights are a pair summing to 100.
 * At 0 the rule is restored to stable alone (our backendRef and header rule removed), so the
 * patch is null when that already holds.
 */
export function weightPatch(shape: RouteShape, weight: number, rolloutId: string, smokeRule?: RouteRule, token?: string): JsonPatchOp[] | null {
  const fence = fenceTests(shape, rolloutId, token);
  if (weight === 0) {
    if (shape.canaryIndex === null && shape.headerRuleIndex === null) return null;
    return [...fence, ...restoreOps(shape), ...setAnnotations(shape, { [BACKEND_REF_ANNOTATION]: null, [HEADER_RULE_ANNOTATION]: null })];
  }
  const addSmoke = smokeRule !== undefined && shape.headerRuleIndex === null;
  if (shape.canaryIndex !== null && shape.canaryWeight === weight && shape.stableWeight === 100 - weight && !addSmoke) return null;
  if (shape.canaryIndex === null) {
    throw new CanaryError('unexpected', `HTTPRoute ${shape.ref}: our canary backendRef is no longer in spec.rules[${shape.ruleIndex}], so the canary cannot get ${weight}% of traffic; it was removed outside this rollout`);
  }
  return [
    ...fence,
    testRefs(shape),
    { op: 'replace', path: `${rulePath(shape)}/${shape.stableIndex}/weight`, value: 100 - weight },
    { op: 'replace', path: `${rulePath(shape)}/${shape.canaryIndex}/weight`, value: weight },
    // Header routing starts with the first raise, once the canary has pods (prepare runs before
    // the canary is scaled up), in the same patch; any later write to 0 removes it again.
    ...(addSmoke ? [{ op: 'add', path: '/spec/rules/-', value: smokeRule } as const, ...setAnnotations(shape, { [HEADER_RULE_ANNOTATION]: HEADER_RULE_NAME })] : []),
  ];
}

export interface PrepareInput {
  rolloutId: string;
  target: string;
  canaryService: string;
  /** The canary Service's port; default the stable backendRef's. */
  canaryPort?: number;
  headerRouting?: { header: string; value?: string };
  /** This process's fence token (lease holder identity and epoch), written with the marks. */
  fenceToken?: string;
}

/**
 * Takes a route for this rollout: the marks (target label, rollout id, "not stopped", the holder's
 * fence token, our backendRef and the stable weight to restore), our backendRef at weight 0 (stable keeps all
 * traffic) and, with header routing, our header rule. Fenced by the backendRefs as read and the
 * resourceVersion, so it lands only on the route we looked at.
 */
export function preparePatch(route: HttpRoute, shape: RouteShape, input: PrepareInput): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [{ op: 'test', path: '/metadata/resourceVersion', value: route.metadata?.resourceVersion ?? '' }];
  const hasLabels = route.metadata?.labels !== undefined;
  if (hasLabels) ops.push({ op: 'add', path: `/metadata/labels/${TARGET_LABEL.replace(/~/g, '~0').replace(/\//g, '~1')}`, value: input.target });
  else ops.push({ op: 'add', path: '/metadata/labels', value: { [TARGET_LABEL]: input.target } });
  const marks: Record<string, string> = {
    [ROLLOUT_ID_ANNOTATION]: input.rolloutId,
    [STOP_ANNOTATION]: NOT_STOPPED,
    [BACKEND_REF_ANNOTATION]: input.canaryService,
    [STABLE_WEIGHT_ANNOTATION]: String(shape.canaryIndex === null ? shape.stableWeight || 1 : shape.originalStableWeight),
    ...(input.fenceToken !== undefined && { [FENCE_ANNOTATION]: input.fenceToken }),
  };
  if (route.metadata?.annotations === undefined) ops.push({ op: 'add', path: '/metadata/annotations', value: marks });
  else for (const [k, v] of Object.entries(marks)) ops.push({ op: 'add', path: annotationPath(k), value: v });
  if (shape.canaryIndex === null) {
    ops.push({ op: 'add', path: `${rulePath(shape)}/-`, value: { kind: 'Service', name: input.canaryService, port: input.canaryPort ?? shape.backendRefs[shape.stableIndex]?.port ?? 80, weight: 0 } });
  } else if (shape.canaryWeight !== 0) {
    ops.push({ op: 'replace', path: `${rulePath(shape)}/${shape.canaryIndex}/weight`, value: 0 });
  }
  // A route left mid-promotion (stable at 0) would send nowhere once the canary is at 0.
  if (shape.canaryIndex !== null && shape.stableWeight !== shape.originalStableWeight) {
    ops.push({ op: 'replace', path: `${rulePath(shape)}/${shape.stableIndex}/weight`, value: shape.originalStableWeight });
  }
  // A header rule left by an earlier rollout goes (the first raise adds this one's); after the
  // backendRef ops, which address the stable rule by an index a removal could shift.
  ops.push(...removeHeaderRule(shape));
  if (route.metadata?.annotations?.[HEADER_RULE_ANNOTATION] !== undefined) ops.push({ op: 'remove', path: annotationPath(HEADER_RULE_ANNOTATION) });
  return ops;
}

/** True when a stop has something to write: our backendRef or header rule present, or no stop marker yet. */
export function needsStop(shape: RouteShape): boolean {
  const stop = shape.annotations[STOP_ANNOTATION];
  return shape.canaryIndex !== null || shape.headerRuleIndex !== null || !stop || stop === NOT_STOPPED;
}

/**
 * A stop: the stop marker (the first stop's is kept) and the rule restored to stable alone, in one
 * patch with no rollout-id test, so it lands whichever rollout prepared the route; every raise
 * prepared before it fails its test. Only the backendRefs as read are tested (a stale read is
 * re-read and rebuilt).
 */
export function stopPatch(shape: RouteShape, marker: string): JsonPatchOp[] {
  const stop = shape.annotations[STOP_ANNOTATION];
  const ops: JsonPatchOp[] = shape.canaryIndex !== null || shape.headerRuleIndex !== null ? restoreOps(shape) : [];
  return [
    ...ops,
    ...setAnnotations(shape, {
      ...(!stop || stop === NOT_STOPPED ? { [STOP_ANNOTATION]: marker } : {}),
      [BACKEND_REF_ANNOTATION]: null,
      [HEADER_RULE_ANNOTATION]: null,
    }),
  ];
}
