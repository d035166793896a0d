// The ways an ingress-nginx canary silently does nothing, read off the namespace's Ingresses
// without writing anything. Each rule is one that ingress-nginx applies quietly (REFERENCE.md:
// mergeAlternativeBackends, #5848, #9458): the canary Ingress is accepted by the API server and
// then ignored by the controller, so a rollout would judge a canary that serves no one.

import { isOwnedBy } from '../k8s/labels.js';
import type { TargetNames } from '../policy/policy.js';
import { fail, ok, warn, type Finding } from './finding.js';

const NGINX = 'nginx.ingress.kubernetes.io/';
export const CANARY_ANNOTATION = `${NGINX}canary`;
export const WEIGHT_ANNOTATION = `${NGINX}canary-weight`;
export const WEIGHT_TOTAL_ANNOTATION = `${NGINX}canary-weight-total`;

/** The parts of a networking.k8s.io/v1 Ingress these checks read (client-node's V1Ingress fits). */
export interface IngressLike {
  metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: {
    ingressClassName?: string;
    defaultBackend?: { service?: { name?: string } };
    rules?: Array<{
      host?: string;
      http?: { paths?: Array<{ path?: string; pathType?: string; backend?: { service?: { name?: string } } }> };
    }>;
  };
}

export interface IngressRoute {
  host: string;
  path: string;
  pathType: string;
  service: string | undefined;
}

export function routesOf(ingress: IngressLike): IngressRoute[] {
  return (ingress.spec?.rules ?? []).flatMap((rule) =>
    (rule.http?.paths ?? []).map((p) => ({ host: rule.host ?? '*', path: p.path ?? '/', pathType: p.pathType ?? 'ImplementationSpecific', service: p.backend?.service?.name })),
  );
}

function backendsOf(ingress: IngressLike): string[] {
  const services = routesOf(ingress).map((r) => r.service);
  const fallback = ingress.spec?.defaultBackend?.service?.name;
  return [...services, fallback].filter((s): s is string => s !== undefined);
}

const key = (r: IngressRoute): string => `${r.host} ${r.path} (${r.pathType})`;
const hostPath = (r: IngressRoute): string => `${r.host} ${r.path}`;
const nameOf = (i: IngressLike): string => i.metadata?.name ?? '(unnamed)';
const isCanary = (i: IngressLike): boolean => i.metadata?.annotations?.[CANARY_ANNOTATION] === 'true';
const classOf = (i: IngressLike): string | undefined => i.spec?.ingressClassName ?? i.metadata?.annotations?.['kubernetes.io/ingress.class'];

function list(items: readonly string[], max = 3): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

export interface IngressPitfallInput {
  target: string;
  namespace: string;
  names: TargetNames;
  /** Every Ingress of the namespace, the stable one among them. */
  ingresses: readonly IngressLike[];
}

export function ingressPitfalls({ target, namespace, names, ingresses }: IngressPitfallInput): Finding[] {
  const stable = ingresses.find((i) => nameOf(i) === names.stableIngress);
  if (!stable) return []; // the objects check reports the missing Ingress
  const ns = (name: string) => `${namespace}/${name}`;
  const findings: Finding[] = [];

  if (isCanary(stable)) {
    findings.push(fail('router', 'stable-ingress', `Ingress ${ns(names.stableIngress)} is itself marked ${CANARY_ANNOTATION}: "true", so ingress-nginx treats it as a canary, not as the main Ingress`, `remove the annotation from ${names.stableIngress}, or set spec.target.stableIngress to the main Ingress`));
    return findings;
  }
  const stableRoutes = routesOf(stable).filter((r) => r.service === names.stableService);
  if (stableRoutes.length === 0) {
    findings.push(fail('router', 'stable-ingress', `Ingress ${ns(names.stableIngress)} has no path to Service ${names.stableService}, so a canary Ingress copied from it would carry no traffic`, `route a path of ${names.stableIngress} to ${names.stableService}, or set spec.target.stableService / stableIngress`));
    return findings;
  }
  findings.push(ok('router', 'stable-ingress', `Ingress ${ns(names.stableIngress)} routes ${list(stableRoutes.map(key))} to Service ${names.stableService}`));

  const stableKeys = new Set(stableRoutes.map(key));
  const stableHostPaths = new Set(stableRoutes.map(hostPath));
  const ours = ingresses.find((i) => nameOf(i) === names.canaryIngress);
  if (!ours) {
    findings.push(ok('router', 'canary-ingress', `Ingress ${ns(names.canaryIngress)} does not exist yet; the deploy creates it at 0% as a copy of those ${stableRoutes.length} path(s), pointing at ${names.canaryService}`));
  } else if (!isOwnedBy(ours.metadata?.labels, target)) {
    findings.push(fail('router', 'canary-ingress', `Ingress ${ns(names.canaryIngress)} exists and was not made by canary (no ownership label), so a deploy will refuse to touch it`, `delete it (kubectl delete ingresses.v1.networking.k8s.io ${names.canaryIngress} -n ${namespace}) or set spec.target.canaryIngress to another name`));
  } else {
    const unmatched = routesOf(ours).filter((r) => !stableKeys.has(key(r)));
    const classDiffers = classOf(ours) !== classOf(stable);
    if (unmatched.length > 0 || classDiffers) {
      const why = [
        unmatched.length > 0 ? `its ${list(unmatched.map(key))} match no path of ${names.stableIngress} (host, path and pathType must all be equal)` : '',
        classDiffers ? `its class ${classOf(ours) ?? '(none)'} differs from ${names.stableIngress}'s ${classOf(stable) ?? '(none)'}` : '',
      ].filter(Boolean);
      findings.push(fail('router', 'canary-ingress', `ingress-nginx silently drops our canary Ingress ${ns(names.canaryIngress)} where it does not match the main Ingress: ${why.join('; ')}`, `delete ${names.canaryIngress} (kubectl delete ingresses.v1.networking.k8s.io ${names.canaryIngress} -n ${namespace}); the next deploy recreates it from ${names.stableIngress}`));
    } else {
      findings.push(ok('router', 'canary-ingress', `our canary Ingress ${ns(names.canaryIngress)} matches ${names.stableIngress}'s host, path and pathType`));
    }
    const total = ours.metadata?.annotations?.[WEIGHT_TOTAL_ANNOTATION];
    if (total !== undefined && Number(total) !== 100) {
      findings.push(fail('router', 'weight-total', `our canary Ingress carries ${WEIGHT_TOTAL_ANNOTATION}: "${total}", so canary's weights (percentages) would not mean percent of requests${Number(total) < 100 ? ' (ingress-nginx ignores a total below 100)' : ''}`, `remove the ${WEIGHT_TOTAL_ANNOTATION} annotation from ${names.canaryIngress}`));
    }
  }

  const others = ingresses.filter((i) => nameOf(i) !== names.stableIngress && nameOf(i) !== names.canaryIngress);
  const rivals = others.filter((i) => isCanary(i) && routesOf(i).some((r) => stableHostPaths.has(hostPath(r))));
  if (rivals.length > 0) {
    const described = rivals.map((i) => `${nameOf(i)} (weight ${i.metadata?.annotations?.[WEIGHT_ANNOTATION] ?? 'unset'})`);
    findings.push(fail('router', 'other-canaries', `other canary Ingresses cover ${names.stableIngress}'s host and path: ${list(described)}; ingress-nginx honours only one canary per host/path (#5848), so ours may be ignored or theirs may keep sending traffic`, `remove the ${CANARY_ANNOTATION} annotation from ${list(rivals.map(nameOf))}, or delete ${rivals.length === 1 ? 'it' : 'them'}`));
  } else {
    findings.push(ok('router', 'other-canaries', `no other canary Ingress covers ${names.stableIngress}'s host and path`));
  }
  const lowTotals = others.filter((i) => isCanary(i) && Number(i.metadata?.annotations?.[WEIGHT_TOTAL_ANNOTATION] ?? 100) < 100);
  if (lowTotals.length > 0) {
    findings.push(warn('router', 'weight-total', `${list(lowTotals.map((i) => `${nameOf(i)} (${WEIGHT_TOTAL_ANNOTATION}: "${i.metadata?.annotations?.[WEIGHT_TOTAL_ANNOTATION] ?? ''}")`))} set a weight total below 100, which ingress-nginx ignores (it uses 100)`, `set ${WEIGHT_TOTAL_ANNOTATION} to 100 or more, or remove it`));
  }

  const primary = others.filter((i) => !isCanary(i) && backendsOf(i).includes(names.canaryService));
  if (primary.length > 0) {
    findings.push(fail('router', 'canary-service-primary', `the canary Service ${names.canaryService} is a primary backend of ${list(primary.map(nameOf))}; ingress-nginx then does not use it as a canary backend (#9458), so the canary weight sends no traffic to it`, `route ${list(primary.map(nameOf))} to another Service, or give the canary its own Service (spec.target.canaryService)`));
  } else {
    findings.push(ok('router', 'canary-service-primary', `the canary Service ${names.canaryService} is no main Ingress's backend`));
  }
  return findings;
}
