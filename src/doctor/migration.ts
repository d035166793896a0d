// Moving a target from ingress-nginx to Gateway API: the HTTPRoute that carries the same
// stable/canary split as the Ingresses do now, translated the way kubernetes-sigs/ingress2gateway
// translates the canary annotations (canary-weight → backendRef weights, canary-by-header[-value]
// → a header-match rule; REFERENCE.md). One reviewed file instead of a research project.

import { Document } from 'yaml';
import type { TargetNames } from '../policy/policy.js';
import { routesOf, WEIGHT_ANNOTATION, type IngressLike } from './ingress-pitfalls.js';

const BY_HEADER = 'nginx.ingress.kubernetes.io/canary-by-header';
const BY_HEADER_VALUE = 'nginx.ingress.kubernetes.io/canary-by-header-value';
const GATEWAY_PLACEHOLDER = 'REPLACE-WITH-YOUR-GATEWAY';

// ingress-nginx treats ImplementationSpecific as a prefix (a regex only with use-regex).
const PATH_TYPES: Record<string, string> = { Prefix: 'PathPrefix', Exact: 'Exact', ImplementationSpecific: 'PathPrefix' };

type PortRef = { number?: number; name?: string };
interface BackendPort {
  service?: { name?: string; port?: PortRef };
}

function portOf(ingress: IngressLike, service: string): PortRef | undefined {
  for (const rule of ingress.spec?.rules ?? []) {
    for (const p of rule.http?.paths ?? []) {
      const backend = p.backend as BackendPort | undefined;
      if (backend?.service?.name === service) return backend.service.port;
    }
  }
  return undefined;
}

export interface MigrationInput {
  namespace: string;
  names: TargetNames;
  stable: IngressLike;
  /** Our canary Ingress, when one exists: its weight and header routing are carried over. */
  canary?: IngressLike;
  /** Named Service ports resolved to numbers (a backendRef needs the number). */
  servicePorts?: Record<string, Record<string, number>>;
}

export interface Migration {
  yaml: string;
  /** What a reviewer must fill in or know before applying it. */
  notes: string[];
}

export function httpRouteFor({ namespace, names, stable, canary, servicePorts = {} }: MigrationInput): Migration {
  const notes: string[] = [`set parentRefs to the Gateway that replaces ingress-nginx (${GATEWAY_PLACEHOLDER} below)`];
  const routes = routesOf(stable).filter((r) => r.service === names.stableService);
  const annotations = canary?.metadata?.annotations ?? {};
  const weight = Math.max(0, Math.min(100, Number(annotations[WEIGHT_ANNOTATION] ?? 0) || 0));
  const header = annotations[BY_HEADER];

  const port = (service: string, ingress: IngressLike): number | undefined => {
    const ref = portOf(ingress, service);
    if (ref?.number !== undefined) return ref.number;
    const resolved = ref?.name !== undefined ? servicePorts[service]?.[ref.name] : undefined;
    if (resolved === undefined) notes.push(`Service ${service}'s port${ref?.name ? ` "${ref.name}"` : ''} could not be resolved to a number: fill in backendRefs[].port`);
    return resolved;
  };
  const stablePort = port(names.stableService, stable);
  const canaryPort = canary ? port(names.canaryService, canary) : stablePort;
  const backend = (name: string, p: number | undefined, w?: number) => ({ name, ...(p !== undefined && { port: p }), ...(w !== undefined && { weight: w }) });

  const hosts = [...new Set(routes.map((r) => r.host))];
  const matches = (host: string) =>
    routes.filter((r) => r.host === host).map((r) => ({ path: { type: PATH_TYPES[r.pathType] ?? 'PathPrefix', value: r.path } }));
  const split = weight > 0 ? [backend(names.stableService, stablePort, 100 - weight), backend(names.canaryService, canaryPort, weight)] : [backend(names.stableService, stablePort)];
  if (weight === 0) notes.push('no canary weight is in force, so the route sends to stable alone; canary deploy with spec.traffic.router: gateway-api adds and removes the canary backendRef itself');
  if (annotations['nginx.ingress.kubernetes.io/canary-by-cookie'] !== undefined) notes.push('canary-by-cookie has no Gateway API equivalent and was left out (as ingress2gateway does)');

  const docs = hosts.map((host, i) => {
    const rules: object[] = [{ matches: matches(host), backendRefs: split }];
    if (header !== undefined) {
      // canary-by-header alone routes requests whose header is "always" (ingress-nginx's rule).
      const value = annotations[BY_HEADER_VALUE] ?? 'always';
      rules.unshift({ matches: matches(host).map((m) => ({ ...m, headers: [{ name: header, value }] })), backendRefs: [backend(names.canaryService, canaryPort)] });
    }
    const route = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: hosts.length > 1 ? `${names.stableIngress}-${i + 1}` : names.stableIngress, namespace },
      spec: {
        parentRefs: [{ name: GATEWAY_PLACEHOLDER }],
        ...(host !== '*' && { hostnames: [host] }),
        rules,
      },
    };
    const doc = new Document(route);
    if (i === 0) doc.commentBefore = ` The Gateway API equivalent of Ingress ${namespace}/${names.stableIngress}${canary ? ` and its canary ${names.canaryIngress}` : ''}, as ingress2gateway translates them.`;
    return doc.toString();
  });
  return { yaml: docs.join('---\n'), notes };
}
