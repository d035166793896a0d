// The resource types the fake serves, and the discovery documents built from them. kubectl and
// client-node both resolve kinds through these documents, so names, kinds and verbs match a real
// API server's.

import type { JsonObject } from './types.js';

export interface ResourceType {
  group: string;
  version: string;
  /** Plural, as in URLs and RBAC rules. */
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  verbs: readonly string[];
  shortNames?: readonly string[];
  categories?: readonly string[];
  /** metadata.generation is maintained and bumped when spec changes. */
  hasGeneration?: boolean;
  /** status is owned by the status subresource: writes to the main resource keep the old status. */
  hasStatus?: boolean;
  hasScale?: boolean;
  /** Fields accepted in fieldSelector besides metadata.name and metadata.namespace. */
  extraFieldSelectors?: readonly string[];
}

const CRUD = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] as const;

export const RESOURCE_TYPES: readonly ResourceType[] = [
  { group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false,
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['ns'], hasStatus: true,
    extraFieldSelectors: ['status.phase'] },
  { group: '', version: 'v1', resource: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true,
    verbs: CRUD, shortNames: ['cm'] },
  { group: '', version: 'v1', resource: 'services', singular: 'service', kind: 'Service', namespaced: true,
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['svc'],
    categories: ['all'], hasStatus: true },
  { group: '', version: 'v1', resource: 'events', singular: 'event', kind: 'Event', namespaced: true,
    verbs: CRUD, shortNames: ['ev'],
    extraFieldSelectors: ['involvedObject.kind', 'involvedObject.name', 'involvedObject.namespace',
      'involvedObject.uid', 'involvedObject.apiVersion', 'reason', 'type', 'source'] },
  { group: '', version: 'v1', resource: 'pods', singular: 'pod', kind: 'Pod', namespaced: true,
    verbs: CRUD, shortNames: ['po'], categories: ['all'], hasStatus: true,
    extraFieldSelectors: ['status.phase', 'spec.nodeName'] },
  { group: 'apps', version: 'v1', resource: 'deployments', singular: 'deployment', kind: 'Deployment', namespaced: true,
    verbs: CRUD, shortNames: ['deploy'], categories: ['all'], hasGeneration: true, hasStatus: true, hasScale: true },
  { group: 'networking.k8s.io', version: 'v1', resource: 'ingresses', singular: 'ingress', kind: 'Ingress',
    namespaced: true, verbs: CRUD, shortNames: ['ing'], hasGeneration: true, hasStatus: true },
  { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', singular: 'lease', kind: 'Lease',
    namespaced: true, verbs: CRUD },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectaccessreviews',
    singular: 'selfsubjectaccessreview', kind: 'SelfSubjectAccessReview', namespaced: false, verbs: ['create'] },
];

export function apiVersionOf(rt: ResourceType): string {
  return rt.group === '' ? rt.version : `${rt.group}/${rt.version}`;
}

/** "ingresses.networking.k8s.io" or "configmaps": the qualified resource used in error messages. */
export function qualifiedResource(rt: ResourceType): string {
  return rt.group === '' ? rt.resource : `${rt.resource}.${rt.group}`;
}

/** "Ingress.networking.k8s.io" or "ConfigMap": the qualified kind used in Invalid messages. */
export function qualifiedKind(rt: ResourceType): string {
  return rt.group === '' ? rt.kind : `${rt.kind}.${rt.group}`;
}

export function findResource(group: string, version: string, resource: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((rt) => rt.group === group && rt.version === version && rt.resource === resource);
}

/** Resolves what a test writes ('Ingress', 'ingresses', 'ing', 'ingress') to a resource type. */
export function resolveKind(kind: string): ResourceType {
  const wanted = kind.toLowerCase();
  const found = RESOURCE_TYPES.find(
    (rt) =>
      rt.kind.toLowerCase() === wanted ||
      rt.resource === wanted ||
      rt.singular === wanted ||
      (rt.shortNames ?? []).includes(wanted),
  );
  if (!found) {
    throw new Error(`fake-kube does not serve kind "${kind}"; known kinds: ${RESOURCE_TYPES.map((rt) => rt.kind).join(', ')}`);
  }
  return found;
}

/** The resource type an object belongs to, from its apiVersion and kind. */
export function resourceForObject(apiVersion: string | undefined, kind: string | undefined): ResourceType | undefined {
  return RESOURCE_TYPES.find((rt) => apiVersionOf(rt) === apiVersion && rt.kind === kind);
}

function groups(): Map<string, string[]> {
  const byGroup = new Map<string, string[]>();
  for (const rt of RESOURCE_TYPES) {
    if (rt.group === '') continue;
    const versions = byGroup.get(rt.group) ?? [];
    if (!versions.includes(rt.version)) versions.push(rt.version);
    byGroup.set(rt.group, versions);
  }
  return byGroup;
}

export function apiVersions(serverAddress: string): JsonObject {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function apiGroup(name: string, versions: readonly string[]): JsonObject {
  const entries = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  const preferred = entries[0] ?? { groupVersion: `${name}/v1`, version: 'v1' };
  return { name, versions: entries, preferredVersion: preferred };
}

export function apiGroupList(): JsonObject {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...groups()].map(([name, versions]) => apiGroup(name, versions)),
  };
}

export function apiGroupDocument(group: string): JsonObject | undefined {
  const versions = groups().get(group);
  if (!versions) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group, versions) };
}

export function apiResourceList(group: string, version: string): JsonObject | undefined {
  const types = RESOURCE_TYPES.filter((rt) => rt.group === group && rt.version === version);
  if (types.length === 0) return undefined;
  const resources: JsonObject[] = [];
  for (const rt of types) {
    const entry: JsonObject = {
      name: rt.resource,
      singularName: rt.singular,
      namespaced: rt.namespaced,
      kind: rt.kind,
      verbs: [...rt.verbs],
    };
    if (rt.shortNames) entry['shortNames'] = [...rt.shortNames];
    if (rt.categories) entry['categories'] = [...rt.categories];
    resources.push(entry);
    if (rt.hasStatus) {
      resources.push({ name: `${rt.resource}/status`, singularName: '', namespaced: rt.namespaced, kind: rt.kind,
        verbs: ['get', 'patch', 'update'] });
    }
    if (rt.hasScale) {
      resources.push({ name: `${rt.resource}/scale`, singularName: '', namespaced: rt.namespaced, group: 'autoscaling',
        version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group === '' ? version : `${group}/${version}`,
    resources,
  };
}
