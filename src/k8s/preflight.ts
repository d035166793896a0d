// Before the first write of a live deploy: do the objects exist, and may we do everything the
// rollout will do? Read-only; SelfSubjectAccessReviews are questions, not writes.

import { AppsV1Api, AuthorizationV1Api, CoreV1Api, CustomObjectsApi, NetworkingV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import type { TargetNames } from '../policy/policy.js';
import type { RouterName } from '../policy/schema.js';
import { isNotFound, statusCode, withKubeRetry, type KubeCallOptions } from './api-errors.js';
import { serverOf } from './connection.js';
import type { RetryPolicy } from '../retry.js';

export interface AccessRequirement {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
}

/** Exactly what deploy, status and rollback do; examples/rbac.yaml grants this set and no more. */
export const REQUIRED_ACCESS: readonly AccessRequirement[] = [
  // Stable Ingress read; canary Ingress created, replaced (adoption), weight-patched; listed to find
  // foreign canaries and, in `rollback`, ours by label.
  ...['get', 'list', 'create', 'update', 'patch'].map((verb) => ({ verb, group: 'networking.k8s.io', resource: 'ingresses' })),
  // Canary image and scale, stable promotion; read to wait for readiness.
  ...['get', 'patch'].map((verb) => ({ verb, group: 'apps', resource: 'deployments' })),
  { verb: 'get', group: '', resource: 'services' },
  // The rollout record.
  ...['get', 'create', 'update'].map((verb) => ({ verb, group: '', resource: 'configmaps' })),
  // One deploy at a time.
  ...['get', 'create', 'update', 'delete'].map((verb) => ({ verb, group: 'coordination.k8s.io', resource: 'leases' })),
  { verb: 'create', group: '', resource: 'events' },
];

/** The Gateway API router's set: the HTTPRoute is read, listed (rollback finds ours by label) and JSON-patched, never created or replaced. */
export const GATEWAY_API_ACCESS: readonly AccessRequirement[] = [
  ...['get', 'list', 'patch'].map((verb) => ({ verb, group: 'gateway.networking.k8s.io', resource: 'httproutes' })),
  ...REQUIRED_ACCESS.filter((a) => a.resource !== 'ingresses'),
];

/** What deploy, status and rollback need with this router; examples/rbac.yaml and examples/rbac-gateway-api.yaml grant them. */
export function requiredAccess(router: RouterName = 'ingress-nginx'): readonly AccessRequirement[] {
  return router === 'gateway-api' ? GATEWAY_API_ACCESS : REQUIRED_ACCESS;
}

export function describeAccess(a: AccessRequirement, namespace: string): string {
  const resource = `${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.group ? `.${a.group}` : ''}`;
  return `cannot ${a.verb} ${resource} in namespace ${namespace}`;
}

export interface PreflightOptions {
  kc: KubeConfig;
  namespace: string;
  names: TargetNames;
  retry?: RetryPolicy;
  /** spec.traffic.router (default ingress-nginx) and, for gateway-api, the HTTPRoute to split. */
  router?: RouterName;
  httpRoute?: string;
}

type Check = { kind: 'Deployment' | 'Service' | 'Ingress' | 'HTTPRoute'; name: string; field: keyof TargetNames | 'httpRoute' };

/** Problems that would stop the rollout, each a sentence; empty when it may start. Writes nothing. */
export async function preflight(opts: PreflightOptions): Promise<string[]> {
  const [missing, denied] = await Promise.all([missingObjects(opts), deniedAccess(opts)]);
  return [...missing, ...denied];
}

/** The target's objects that do not exist, each a sentence naming the policy field that renames it. */
export async function missingObjects({ kc, namespace, names, retry: retryOpts, router = 'ingress-nginx', httpRoute }: PreflightOptions): Promise<string[]> {
  const retry = { ...retryOpts, server: serverOf(kc) };
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const net = kc.makeApiClient(NetworkingV1Api);

  const checks: Check[] = [
    { kind: 'Deployment', name: names.stableDeployment, field: 'stableDeployment' },
    { kind: 'Service', name: names.stableService, field: 'stableService' },
    router === 'gateway-api'
      ? { kind: 'HTTPRoute', name: httpRoute ?? names.stableService, field: 'httpRoute' }
      : { kind: 'Ingress', name: names.stableIngress, field: 'stableIngress' },
    { kind: 'Deployment', name: names.canaryDeployment, field: 'canaryDeployment' },
    { kind: 'Service', name: names.canaryService, field: 'canaryService' },
  ];
  const read = (c: Check, o: KubeCallOptions): Promise<unknown> => {
    const args = { name: c.name, namespace };
    if (c.kind === 'Deployment') return apps.readNamespacedDeployment(args, o);
    if (c.kind === 'Service') return core.readNamespacedService(args, o);
    if (c.kind === 'HTTPRoute') {
      return kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes', ...args }, o);
    }
    return net.readNamespacedIngress(args, o);
  };
  const missing = await Promise.all(
    checks.map(async (c): Promise<string | undefined> => {
      try {
        await withKubeRetry(`reading ${c.kind} ${namespace}/${c.name}`, (o) => read(c, o), retry);
        return undefined;
      } catch (err) {
        if (isNotFound(err)) {
          if (c.field === 'httpRoute') return `HTTPRoute ${namespace}/${c.name} not found (the route to split; set spec.traffic.httpRoute in the policy if it has another name; the Gateway API CRDs must be installed)`;
          return `${c.kind} ${namespace}/${c.name} not found (the ${c.field.replace(/([A-Z])/g, ' $1').toLowerCase()}; set spec.target.${c.field} in the policy if it has another name)`;
        }
        // A refused read (403) is reported by the access review; anything else is news.
        if (err instanceof CanaryError && statusCode(err.cause) === 403) return undefined;
        throw err;
      }
    }),
  );
  return missing.filter((p): p is string => p !== undefined);
}

/** Every write (and read) the rollout needs that this user may not do, one SelfSubjectAccessReview each. */
export async function deniedAccess({ kc, namespace, retry: retryOpts, router = 'ingress-nginx' }: PreflightOptions): Promise<string[]> {
  const retry = { ...retryOpts, server: serverOf(kc) };
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const denied = await Promise.all(
    requiredAccess(router).map(async (a): Promise<string | undefined> => {
      const review = await withKubeRetry(
        `asking whether this user may ${a.verb} ${a.resource}`,
        (o) =>
          authz.createSelfSubjectAccessReview({
            body: {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SelfSubjectAccessReview',
              spec: { resourceAttributes: { namespace, verb: a.verb, group: a.group, resource: a.resource, ...(a.subresource ? { subresource: a.subresource } : {}) } },
            },
          }, o),
        retry,
      );
      return review.status?.allowed ? undefined : describeAccess(a, namespace);
    }),
  );
  return denied.filter((p): p is string => p !== undefined);
}
