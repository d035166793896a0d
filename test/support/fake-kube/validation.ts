// Server-side defaulting and validation for the kinds the fake serves. Only the rules that catch
// real client bugs are here: names, label values, sizes, MicroTime format, Deployment selector and
// containers, Ingress paths and backends, and (standing in for ingress-nginx's admission webhook)
// the canary-weight annotation.

import type { ResourceType } from './discovery.js';
import { cannotDecode, type StatusCause } from './status.js';
import { deepEqual, isJsonObject, type JsonObject, type JsonValue, type KubeObject } from './types.js';

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
// metav1.MicroTime is parsed with layout 2006-01-02T15:04:05.000000Z07:00: exactly six fractional
// digits. Date#toISOString() has three, and the real server answers 400.
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export const CANARY_WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';
export const CANARY_WEIGHT_TOTAL = 'nginx.ingress.kubernetes.io/canary-weight-total';

const invalidValue = (field: string, value: unknown, why: string): StatusCause => ({
  reason: 'FieldValueInvalid',
  field,
  message: `Invalid value: ${JSON.stringify(value)}: ${why}`,
});
const required = (field: string, why = ''): StatusCause => ({
  reason: 'FieldValueRequired',
  field,
  message: why ? `Required value: ${why}` : 'Required value',
});
const tooLong = (field: string, max: number): StatusCause => ({
  reason: 'FieldValueTooLong',
  field,
  message: `Too long: must have at most ${max} bytes`,
});

function at(obj: unknown, ...path: string[]): unknown {
  let node = obj;
  for (const part of path) {
    if (!isJsonObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

/** Type errors the real server reports as 400 while decoding, before validation. */
export function checkDecodable(rt: ResourceType, obj: KubeObject): void {
  const stringMap = (value: unknown, field: string): void => {
    if (value === undefined || value === null) return;
    if (!isJsonObject(value)) throw cannotDecode(rt, `json: cannot unmarshal into Go struct field ${field} of type map[string]string`);
    for (const v of Object.values(value)) {
      if (typeof v !== 'string') {
        throw cannotDecode(rt, `json: cannot unmarshal ${typeof v} into Go struct field ${field} of type string`);
      }
    }
  };
  stringMap(obj.metadata?.labels, 'ObjectMeta.metadata.labels');
  stringMap(obj.metadata?.annotations, 'ObjectMeta.metadata.annotations');
  if (rt.kind === 'ConfigMap') stringMap(obj['data'], 'ConfigMap.data');
  const microTime = (value: unknown): void => {
    if (value === undefined || value === null) return;
    if (typeof value !== 'string' || !MICRO_TIME.test(value)) {
      throw cannotDecode(rt, `parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05.000000Z07:00": ` +
        'cannot parse as MicroTime (exactly six fractional digits are required)');
    }
  };
  const time = (value: unknown): void => {
    if (value === undefined || value === null) return;
    if (typeof value !== 'string' || !TIME.test(value)) {
      throw cannotDecode(rt, `parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05Z07:00": cannot parse`);
    }
  };
  if (rt.kind === 'Lease') {
    microTime(at(obj, 'spec', 'acquireTime'));
    microTime(at(obj, 'spec', 'renewTime'));
  }
  if (rt.kind === 'Event') {
    microTime(obj['eventTime']);
    time(obj['firstTimestamp']);
    time(obj['lastTimestamp']);
  }
}

let nextClusterIp = 10;

export function applyDefaults(rt: ResourceType, obj: KubeObject, old: KubeObject | undefined): void {
  if (rt.kind === 'Namespace') {
    obj['status'] = { phase: 'Active' };
    const labels = { ...(obj.metadata?.labels ?? {}) };
    labels['kubernetes.io/metadata.name'] = obj.metadata?.name ?? '';
    if (obj.metadata) obj.metadata.labels = labels;
  }
  if (rt.kind === 'Service') {
    const spec: JsonObject = isJsonObject(obj['spec']) ? obj['spec'] : {};
    obj['spec'] = spec;
    spec['type'] ??= 'ClusterIP';
    spec['sessionAffinity'] ??= 'None';
    if (spec['clusterIP'] === undefined) {
      const oldIp = at(old, 'spec', 'clusterIP');
      spec['clusterIP'] = typeof oldIp === 'string' ? oldIp : `10.96.0.${nextClusterIp++ % 250}`;
    }
    spec['clusterIPs'] ??= [spec['clusterIP'] as JsonValue];
    if (Array.isArray(spec['ports'])) {
      for (const port of spec['ports']) if (isJsonObject(port)) port['protocol'] ??= 'TCP';
    }
  }
  if (rt.kind === 'Deployment') {
    const spec: JsonObject = isJsonObject(obj['spec']) ? obj['spec'] : {};
    obj['spec'] = spec;
    spec['replicas'] ??= 1;
    spec['revisionHistoryLimit'] ??= 10;
    spec['progressDeadlineSeconds'] ??= 600;
    spec['strategy'] ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
  }
}

function validateName(rt: ResourceType, obj: KubeObject): StatusCause[] {
  const name = obj.metadata?.name;
  if (!name) return [required('metadata.name', 'name or generateName is required')];
  if (rt.kind === 'Service') {
    if (!DNS1035.test(name) || name.length > 63) {
      return [invalidValue('metadata.name', name, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', " +
        "start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex " +
        "used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")];
    }
    return [];
  }
  if (rt.kind === 'Namespace') {
    if (!DNS1123_LABEL.test(name) || name.length > 63) {
      return [invalidValue('metadata.name', name, "a lowercase RFC 1123 label must consist of lower case alphanumeric " +
        "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex " +
        "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")];
    }
    return [];
  }
  if (!SUBDOMAIN.test(name) || name.length > 253) {
    return [invalidValue('metadata.name', name, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric " +
      "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for " +
      "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")];
  }
  return [];
}

function validateMetadata(obj: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  for (const [key, value] of Object.entries(obj.metadata?.labels ?? {})) {
    if (value.length > 63) causes.push(invalidValue('metadata.labels', value, 'must be no more than 63 characters'));
    else if (!LABEL_VALUE.test(value)) {
      causes.push(invalidValue('metadata.labels', value, "a valid label must be an empty string or consist of alphanumeric " +
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or " +
        "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
    }
    const keyName = key.includes('/') ? key.slice(key.indexOf('/') + 1) : key;
    if (keyName.length === 0 || keyName.length > 63 || !LABEL_VALUE.test(keyName)) {
      causes.push(invalidValue('metadata.labels', key, 'name part must consist of alphanumeric characters, ' +
        "'-', '_' or '.', and must start and end with an alphanumeric character"));
    }
  }
  const annotations = obj.metadata?.annotations ?? {};
  const annotationBytes = Object.entries(annotations).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (annotationBytes > 262144) causes.push(tooLong('metadata.annotations', 262144));
  return causes;
}

function validateConfigMap(obj: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  let bytes = 0;
  for (const field of ['data', 'binaryData'] as const) {
    const data = obj[field];
    if (!isJsonObject(data)) continue;
    for (const [key, value] of Object.entries(data)) {
      if (!CONFIGMAP_KEY.test(key)) {
        causes.push(invalidValue(`${field}[${key}]`, key, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
      }
      bytes += Buffer.byteLength(key) + Buffer.byteLength(String(value));
    }
  }
  if (bytes > 1048576) causes.push(tooLong('[]', 1048576));
  return causes;
}

function validateDeployment(obj: KubeObject, old: KubeObject | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  const replicas = at(obj, 'spec', 'replicas');
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    causes.push(invalidValue('spec.replicas', replicas, 'must be greater than or equal to 0'));
  }
  const matchLabels = at(obj, 'spec', 'selector', 'matchLabels');
  if (!isJsonObject(at(obj, 'spec', 'selector'))) causes.push(required('spec.selector'));
  const templateLabels = at(obj, 'spec', 'template', 'metadata', 'labels');
  if (isJsonObject(matchLabels)) {
    const labels = isJsonObject(templateLabels) ? templateLabels : {};
    if (!Object.entries(matchLabels).every(([k, v]) => labels[k] === v)) {
      causes.push(invalidValue('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'));
    }
  }
  if (old && !deepEqual(at(old, 'spec', 'selector'), at(obj, 'spec', 'selector'))) {
    causes.push(invalidValue('spec.selector', at(obj, 'spec', 'selector'), 'field is immutable'));
  }
  const containers = at(obj, 'spec', 'template', 'spec', 'containers');
  if (!Array.isArray(containers) || containers.length === 0) {
    causes.push(required('spec.template.spec.containers'));
  } else {
    containers.forEach((c, i) => {
      if (!isJsonObject(c) || typeof c['name'] !== 'string' || c['name'] === '') {
        causes.push(required(`spec.template.spec.containers[${i}].name`));
      }
      if (!isJsonObject(c) || typeof c['image'] !== 'string' || c['image'] === '') {
        causes.push(required(`spec.template.spec.containers[${i}].image`));
      }
    });
  }
  return causes;
}

function validateIngress(obj: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const annotations = obj.metadata?.annotations ?? {};
  const total = annotations[CANARY_WEIGHT_TOTAL];
  let max = 100;
  if (total !== undefined) {
    if (!/^\d+$/.test(total) || Number(total) < 1) {
      causes.push(invalidValue(`metadata.annotations[${CANARY_WEIGHT_TOTAL}]`, total, 'must be a positive integer'));
    } else {
      max = Number(total);
    }
  }
  const weight = annotations[CANARY_WEIGHT];
  if (weight !== undefined && (!/^\d+$/.test(weight) || Number(weight) > max)) {
    causes.push(invalidValue(`metadata.annotations[${CANARY_WEIGHT}]`, weight,
      `must be an integer between 0 and ${max} (ingress-nginx canary weight)`));
  }
  const rules = at(obj, 'spec', 'rules');
  const backend = (b: unknown, field: string): void => {
    const service = at(b, 'service');
    if (!isJsonObject(service)) {
      if (!isJsonObject(at(b, 'resource'))) causes.push(required(field, 'one backend (service or resource) must be specified'));
      return;
    }
    if (typeof service['name'] !== 'string' || service['name'] === '') causes.push(required(`${field}.service.name`));
    const port = service['port'];
    if (!isJsonObject(port) || (port['number'] === undefined && port['name'] === undefined)) {
      causes.push(required(`${field}.service.port`, 'port name or number is required'));
    }
  };
  if (Array.isArray(rules)) {
    rules.forEach((rule, i) => {
      const paths = at(rule, 'http', 'paths');
      if (!Array.isArray(paths)) return;
      paths.forEach((p, j) => {
        const field = `spec.rules[${i}].http.paths[${j}]`;
        const pathType = at(p, 'pathType');
        if (pathType === undefined) causes.push(required(`${field}.pathType`, 'pathType must be specified'));
        else if (!['Exact', 'Prefix', 'ImplementationSpecific'].includes(String(pathType))) {
          causes.push({ reason: 'FieldValueNotSupported', field: `${field}.pathType`,
            message: `Unsupported value: ${JSON.stringify(pathType)}: supported values: "Exact", "ImplementationSpecific", "Prefix"` });
        }
        backend(at(p, 'backend'), `${field}.backend`);
      });
    });
  }
  const defaultBackend = at(obj, 'spec', 'defaultBackend');
  if (defaultBackend !== undefined) backend(defaultBackend, 'spec.defaultBackend');
  if (!Array.isArray(rules) && defaultBackend === undefined) {
    causes.push({ reason: 'FieldValueInvalid', field: 'spec', message: 'Invalid value: "": either `defaultBackend` or `rules` must be specified' });
  }
  return causes;
}

function validateLease(obj: KubeObject): StatusCause[] {
  const duration = at(obj, 'spec', 'leaseDurationSeconds');
  if (duration !== undefined && duration !== null && (typeof duration !== 'number' || duration <= 0)) {
    return [invalidValue('spec.leaseDurationSeconds', duration, 'must be greater than 0')];
  }
  return [];
}

function validateEvent(obj: KubeObject): StatusCause[] {
  const involvedNs = at(obj, 'involvedObject', 'namespace');
  if (typeof involvedNs === 'string' && involvedNs !== '' && involvedNs !== obj.metadata?.namespace) {
    return [invalidValue('involvedObject.namespace', involvedNs, 'does not match event.namespace')];
  }
  return [];
}

export function validate(rt: ResourceType, obj: KubeObject, old: KubeObject | undefined): StatusCause[] {
  const causes = [...validateName(rt, obj), ...validateMetadata(obj)];
  switch (rt.kind) {
    case 'ConfigMap':
      causes.push(...validateConfigMap(obj));
      break;
    case 'Deployment':
      causes.push(...validateDeployment(obj, old));
      break;
    case 'Ingress':
      causes.push(...validateIngress(obj));
      break;
    case 'Lease':
      causes.push(...validateLease(obj));
      break;
    case 'Event':
      causes.push(...validateEvent(obj));
      break;
  }
  return causes;
}
