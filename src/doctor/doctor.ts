// `canary doctor`: everything a rollout depends on, checked without writing anything. The
// cluster and Prometheus are read here; every judgement is made by the pure checks beside it.

import { CoreV1Api, CustomObjectsApi, NetworkingV1Api, type KubeConfig } from '@kubernetes/client-node';
import { queryTargetOf } from '../analysis/promql-template.js';
import type { MetricsSource } from '../analysis/types.js';
import { CanaryError } from '../errors.js';
import { isNotFound, statusCode, withKubeRetry } from '../k8s/api-errors.js';
import { HTTPROUTE_GROUP, HTTPROUTE_VERSION, type HttpRoute } from '../k8s/httproute-shape.js';
import { httpRouteOf, routerOf } from '../k8s/router-factory.js';
import type { RouterName } from '../policy/schema.js';
import { serverOf } from '../k8s/connection.js';
import { deniedAccess, missingObjects } from '../k8s/preflight.js';
import type { Policy, TargetNames } from '../policy/policy.js';
import { canWork, fail, ok, type Finding } from './finding.js';
import { ingressPitfalls, type IngressLike } from './ingress-pitfalls.js';
import { httpRouteFindings } from './httproute-checks.js';
import { httpRouteFor, type Migration } from './migration.js';
import { prometheusFindings } from './prometheus-checks.js';
import type { RetryPolicy } from '../retry.js';

export interface DoctorInput {
  target: string;
  namespace: string;
  names: TargetNames;
  policy: Policy;
  kc: KubeConfig;
  retry: RetryPolicy;
  prometheus: MetricsSource & { displayUrl: string; serverTime(): Promise<number> };
  now: Date;
}

export interface DoctorReport {
  target: string;
  namespace: string;
  router: RouterName;
  canWork: boolean;
  findings: Finding[];
  /** The HTTPRoute that carries the same split, for a move to Gateway API. */
  migration?: Migration;
}

/** The namespace's Ingresses, or null when this user may not list them (the access check says so). */
async function namespaceIngresses(kc: KubeConfig, namespace: string, retry: RetryPolicy): Promise<IngressLike[] | null> {
  const net = kc.makeApiClient(NetworkingV1Api);
  try {
    const list = await withKubeRetry(`listing the Ingresses of namespace ${namespace}`, (o) => net.listNamespacedIngress({ namespace }, o), { ...retry, server: serverOf(kc) });
    return list.items;
  } catch (err) {
    if (err instanceof CanaryError && statusCode(err.cause) === 403) return null;
    throw err;
  }
}

/** The HTTPRoute the gateway-api router would split, or null when it is absent or unreadable (other checks say why). */
async function readHttpRoute(kc: KubeConfig, namespace: string, name: string, retry: RetryPolicy): Promise<HttpRoute | null> {
  const api = kc.makeApiClient(CustomObjectsApi);
  try {
    return (await withKubeRetry(`reading HTTPRoute ${namespace}/${name}`, (o) => api.getNamespacedCustomObject({ group: HTTPROUTE_GROUP, version: HTTPROUTE_VERSION, namespace, plural: 'httproutes', name }, o), { ...retry, server: serverOf(kc) })) as HttpRoute;
  } catch (err) {
    if (isNotFound(err) || (err instanceof CanaryError && (statusCode(err.cause) === 403 || statusCode(err.cause) === 404))) return null;
    throw err;
  }
}

/** Named ports of the two Services, so the migrated HTTPRoute can carry port numbers. */
async function servicePorts(kc: KubeConfig, namespace: string, names: TargetNames, retry: RetryPolicy): Promise<Record<string, Record<string, number>>> {
  const core = kc.makeApiClient(CoreV1Api);
  const ports: Record<string, Record<string, number>> = {};
  for (const name of [names.stableService, names.canaryService]) {
    try {
      const svc = await withKubeRetry(`reading Service ${namespace}/${name}`, (o) => core.readNamespacedService({ name, namespace }, o), { ...retry, server: serverOf(kc) });
      ports[name] = Object.fromEntries((svc.spec?.ports ?? []).filter((p) => p.name).map((p) => [p.name as string, p.port]));
    } catch {
      // Only the migration's port numbers depend on it; the objects check reports a missing Service.
    }
  }
  return ports;
}

export async function runDoctor(input: DoctorInput): Promise<DoctorReport> {
  const { kc, namespace, names, retry, policy } = input;
  const router = routerOf(policy.traffic);
  const httpRoute = httpRouteOf(policy.traffic, input.target);
  const opts = { kc, namespace, names, retry, router, httpRoute };
  const [missing, denied] = await Promise.all([missingObjects(opts), deniedAccess(opts)]);
  const findings: Finding[] = [];
  const routeObject = router === 'gateway-api' ? `HTTPRoute ${httpRoute}` : `Ingress ${names.stableIngress}`;

  findings.push(
    ...(missing.length > 0
      ? missing.map((m) => fail('objects', 'exists', m, 'create it, or name it in spec.target'))
      : [ok('objects', 'exists', `Deployments ${names.stableDeployment} and ${names.canaryDeployment}, Services ${names.stableService} and ${names.canaryService}, ${routeObject}`)]),
  );
  const rbacFile = router === 'gateway-api' ? 'examples/rbac-gateway-api.yaml' : 'examples/rbac.yaml';
  findings.push(
    ...(denied.length > 0
      ? denied.map((d) => fail('access', 'rbac', d, `bind the deployer to the Role in ${rbacFile}`))
      : [ok('access', 'rbac', 'every verb deploy, status and rollback use is allowed (SelfSubjectAccessReview)')]),
  );

  let ingresses: IngressLike[] | null = [];
  if (router === 'gateway-api') {
    const route = await readHttpRoute(kc, namespace, httpRoute, retry);
    if (route) findings.push(...httpRouteFindings(route, names));
  } else {
    ingresses = await namespaceIngresses(kc, namespace, retry);
    if (ingresses === null) {
      findings.push(fail('router', 'ingresses', `this user may not list the Ingresses of namespace ${namespace}, so the ingress-nginx pitfalls were not checked`, 'bind the deployer to the Role in examples/rbac.yaml (it lists Ingresses) and run doctor again'));
    } else {
      findings.push(...ingressPitfalls({ target: input.target, namespace, names, ingresses }));
    }
  }

  const target = queryTargetOf(namespace, names);
  findings.push(
    ...(await prometheusFindings({
      policy,
      target,
      source: input.prometheus,
      at: new Date(input.now.getTime() - policy.analysis.evaluationDelayMs),
      serverTime: () => input.prometheus.serverTime(),
      displayUrl: input.prometheus.displayUrl,
    })),
  );

  const stable = router === 'gateway-api' ? undefined : ingresses?.find((i) => i.metadata?.name === names.stableIngress);
  const canary = ingresses?.find((i) => i.metadata?.name === names.canaryIngress);
  const migration = stable ? httpRouteFor({ namespace, names, stable, ...(canary && { canary }), servicePorts: await servicePorts(kc, namespace, names, retry) }) : undefined;
  return { target: input.target, namespace, router, canWork: canWork(findings), findings, ...(migration && { migration }) };
}
