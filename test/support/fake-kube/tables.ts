// Server-side printing: kubectl's human output asks for `as=Table` and prints whatever columns the
// server returns, so `kubectl get deployments` needs these.

import type { ResourceType } from './discovery.js';
import { isJsonObject, type JsonObject, type JsonValue, type KubeObject } from './types.js';

interface Column {
  name: string;
  type: string;
  format?: string;
  priority?: number;
  cell: (obj: KubeObject) => JsonValue;
}

function at(obj: unknown, ...path: string[]): unknown {
  let node = obj;
  for (const part of path) {
    if (!isJsonObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

const num = (value: unknown): number => (typeof value === 'number' ? value : 0);

export function age(timestamp: string | undefined): string {
  if (!timestamp) return '<unknown>';
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

const nameColumn: Column = { name: 'Name', type: 'string', format: 'name', cell: (o) => o.metadata?.name ?? '' };
const ageColumn: Column = { name: 'Age', type: 'string', cell: (o) => age(o.metadata?.creationTimestamp) };

function containers(o: KubeObject): JsonObject[] {
  const list = at(o, 'spec', 'template', 'spec', 'containers');
  return Array.isArray(list) ? list.filter(isJsonObject) : [];
}

const COLUMNS: Record<string, Column[]> = {
  Deployment: [
    nameColumn,
    { name: 'Ready', type: 'string', cell: (o) => `${num(at(o, 'status', 'readyReplicas'))}/${num(at(o, 'spec', 'replicas'))}` },
    { name: 'Up-to-date', type: 'integer', cell: (o) => num(at(o, 'status', 'updatedReplicas')) },
    { name: 'Available', type: 'integer', cell: (o) => num(at(o, 'status', 'availableReplicas')) },
    ageColumn,
    { name: 'Containers', type: 'string', priority: 1, cell: (o) => containers(o).map((c) => String(c['name'])).join(',') },
    { name: 'Images', type: 'string', priority: 1, cell: (o) => containers(o).map((c) => String(c['image'])).join(',') },
  ],
  Ingress: [
    nameColumn,
    { name: 'Class', type: 'string', cell: (o) => String(at(o, 'spec', 'ingressClassName') ?? '<none>') },
    { name: 'Hosts', type: 'string', cell: (o) => {
      const rules = at(o, 'spec', 'rules');
      return Array.isArray(rules) ? rules.map((r) => String(at(r, 'host') ?? '*')).join(',') : '*';
    } },
    { name: 'Address', type: 'string', cell: () => '' },
    { name: 'Ports', type: 'string', cell: (o) => (Array.isArray(at(o, 'spec', 'tls')) ? '80, 443' : '80') },
    ageColumn,
  ],
  Service: [
    nameColumn,
    { name: 'Type', type: 'string', cell: (o) => String(at(o, 'spec', 'type') ?? 'ClusterIP') },
    { name: 'Cluster-IP', type: 'string', cell: (o) => String(at(o, 'spec', 'clusterIP') ?? '') },
    { name: 'External-IP', type: 'string', cell: () => '<none>' },
    { name: 'Port(s)', type: 'string', cell: (o) => {
      const ports = at(o, 'spec', 'ports');
      return Array.isArray(ports) ? ports.map((p) => `${String(at(p, 'port'))}/${String(at(p, 'protocol') ?? 'TCP')}`).join(',') : '<none>';
    } },
    ageColumn,
  ],
  ConfigMap: [nameColumn, { name: 'Data', type: 'integer', cell: (o) => Object.keys(isJsonObject(o['data']) ? o['data'] : {}).length }, ageColumn],
  Lease: [nameColumn, { name: 'Holder', type: 'string', cell: (o) => String(at(o, 'spec', 'holderIdentity') ?? '') }, ageColumn],
  Namespace: [nameColumn, { name: 'Status', type: 'string', cell: (o) => String(at(o, 'status', 'phase') ?? 'Active') }, ageColumn],
  Event: [
    { name: 'Last Seen', type: 'string', cell: (o) => age(String(o['lastTimestamp'] ?? o['eventTime'] ?? o.metadata?.creationTimestamp ?? '')) },
    { name: 'Type', type: 'string', cell: (o) => String(o['type'] ?? '') },
    { name: 'Reason', type: 'string', cell: (o) => String(o['reason'] ?? '') },
    { name: 'Object', type: 'string', cell: (o) => `${String(at(o, 'involvedObject', 'kind') ?? '').toLowerCase()}/${String(at(o, 'involvedObject', 'name') ?? '')}` },
    { name: 'Message', type: 'string', cell: (o) => String(o['message'] ?? '') },
  ],
  Pod: [
    nameColumn,
    { name: 'Status', type: 'string', cell: (o) => String(at(o, 'status', 'phase') ?? 'Pending') },
    ageColumn,
  ],
};

export function wantsTable(accept: string | undefined): 'v1' | 'v1beta1' | undefined {
  if (!accept || !accept.includes('as=Table')) return undefined;
  return accept.split(',').some((part) => part.includes('as=Table') && part.includes('v=v1') && !part.includes('v=v1beta1'))
    ? 'v1'
    : 'v1beta1';
}

export function toTable(
  rt: ResourceType,
  objects: readonly KubeObject[],
  listMeta: JsonObject,
  version: 'v1' | 'v1beta1',
  includeObject: string | null,
): JsonObject {
  const columns = COLUMNS[rt.kind] ?? [nameColumn, ageColumn];
  const apiVersion = `meta.k8s.io/${version}`;
  return {
    kind: 'Table',
    apiVersion,
    metadata: listMeta,
    columnDefinitions: columns.map((c) => ({
      name: c.name, type: c.type, format: c.format ?? '', description: c.name, priority: c.priority ?? 0,
    })),
    rows: objects.map((obj) => {
      const row: JsonObject = { cells: columns.map((c) => c.cell(obj)) };
      if (includeObject === 'Object') {
        row['object'] = obj as JsonObject;
      } else if (includeObject !== 'None') {
        row['object'] = { kind: 'PartialObjectMetadata', apiVersion, metadata: (obj.metadata ?? {}) as JsonObject };
      }
      return row;
    }),
  };
}
