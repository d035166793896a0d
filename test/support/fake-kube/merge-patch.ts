// The three patch formats kube-apiserver accepts (server-side apply aside).
//
// Strategic merge patch is approximated: it is an RFC 7386 merge patch, except that lists of
// objects Kubernetes merges by key (containers by name, ports by port, ...) are merged element by
// element and honour `$patch: delete`. Other directives ($setElementOrder, $retainKeys,
// $deleteFromPrimitiveList) are not implemented; a patch using them is rejected so a test notices.

import { clone, isJsonObject, type JsonObject, type JsonValue } from './types.js';

export class PatchError extends Error {}

/** RFC 7386: objects merge recursively, null deletes, everything else (arrays too) replaces. */
export function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return clone(patch);
  const result: JsonObject = isJsonObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** List field name → the key its elements merge on, from the Kubernetes API's patchMergeKey tags. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  imagePullSecrets: 'name',
  conditions: 'type',
  tolerations: 'key',
  hostAliases: 'ip',
};

function mergeKeyFor(field: string, path: readonly string[]): string | undefined {
  if (field === 'ports') {
    // Container ports merge on containerPort, Service ports on port.
    return path.includes('containers') || path.includes('initContainers') ? 'containerPort' : 'port';
  }
  return MERGE_KEYS[field];
}

export function strategicMergePatch(target: JsonValue | undefined, patch: JsonValue, path: readonly string[] = []): JsonValue {
  if (!isJsonObject(patch)) return clone(patch);
  const result: JsonObject = isJsonObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) {
      if (key === '$patch' && value === 'replace') return stripDirectives(patch);
      throw new PatchError(`strategic merge patch directive ${key} is not supported by fake-kube`);
    }
    if (value === null) {
      delete result[key];
      continue;
    }
    const mergeKey = mergeKeyFor(key, path);
    const current = result[key];
    if (mergeKey && Array.isArray(value) && Array.isArray(current)) {
      result[key] = mergeList(current, value, mergeKey, [...path, key]);
    } else {
      result[key] = strategicMergePatch(current, value, [...path, key]);
    }
  }
  return result;
}

function stripDirectives(patch: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(patch)) if (!k.startsWith('$')) out[k] = clone(v);
  return out;
}

function mergeList(current: JsonValue[], patch: JsonValue[], mergeKey: string, path: readonly string[]): JsonValue[] {
  const result = clone(current);
  for (const item of patch) {
    if (!isJsonObject(item) || !(mergeKey in item)) {
      throw new PatchError(`strategic merge patch: element of ${path.join('.')} lacks merge key "${mergeKey}"`);
    }
    const index = result.findIndex((el) => isJsonObject(el) && el[mergeKey] === item[mergeKey]);
    if (item['$patch'] === 'delete') {
      if (index >= 0) result.splice(index, 1);
    } else if (index >= 0) {
      result[index] = strategicMergePatch(result[index], item, path);
    } else {
      result.push(stripDirectives(item));
    }
  }
  return result;
}

/** RFC 6902 JSON Patch: add, remove, replace, move, copy, test. */
export function jsonPatch(document: JsonValue, operations: JsonValue): JsonValue {
  if (!Array.isArray(operations)) throw new PatchError('json patch must be an array of operations');
  let doc = clone(document);
  for (const op of operations) {
    if (!isJsonObject(op) || typeof op['op'] !== 'string' || typeof op['path'] !== 'string') {
      throw new PatchError('json patch operation needs "op" and "path"');
    }
    const path = op['path'];
    switch (op['op']) {
      case 'add':
        doc = setAt(doc, path, requireValue(op), 'add');
        break;
      case 'replace':
        getAt(doc, path);
        doc = setAt(doc, path, requireValue(op), 'replace');
        break;
      case 'remove':
        doc = removeAt(doc, path);
        break;
      case 'move': {
        const from = requireFrom(op);
        const value = getAt(doc, from);
        doc = setAt(removeAt(doc, from), path, value, 'add');
        break;
      }
      case 'copy':
        doc = setAt(doc, path, clone(getAt(doc, requireFrom(op))), 'add');
        break;
      case 'test': {
        const actual = getAt(doc, path);
        if (JSON.stringify(actual) !== JSON.stringify(requireValue(op))) {
          throw new PatchError(`testing value ${path} failed`);
        }
        break;
      }
      default:
        throw new PatchError(`unexpected json patch operation "${String(op['op'])}"`);
    }
  }
  return doc;
}

function requireValue(op: JsonObject): JsonValue {
  if (!('value' in op)) throw new PatchError(`json patch "${String(op['op'])}" operation needs a value`);
  return op['value'] as JsonValue;
}

function requireFrom(op: JsonObject): string {
  const from = op['from'];
  if (typeof from !== 'string') throw new PatchError(`json patch "${String(op['op'])}" operation needs "from"`);
  return from;
}

function tokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer "${pointer}"`);
  return pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function getAt(doc: JsonValue, pointer: string): JsonValue {
  let node: JsonValue = doc;
  for (const token of tokens(pointer)) {
    if (Array.isArray(node)) {
      const child: JsonValue | undefined = node[Number(token)];
      if (!/^\d+$/.test(token) || child === undefined) throw new PatchError(`path ${pointer} does not exist`);
      node = child;
    } else if (isJsonObject(node) && token in node) {
      node = node[token] as JsonValue;
    } else {
      throw new PatchError(`path ${pointer} does not exist`);
    }
  }
  return node;
}

function parentOf(doc: JsonValue, pointer: string): { parent: JsonValue; last: string } {
  const parts = tokens(pointer);
  const last = parts.pop();
  if (last === undefined) throw new PatchError('cannot address the document root here');
  const parentPointer = parts.map((t) => '/' + t.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
  return { parent: getAt(doc, parentPointer), last };
}

function setAt(doc: JsonValue, pointer: string, value: JsonValue, mode: 'add' | 'replace'): JsonValue {
  if (pointer === '') return clone(value);
  const { parent, last } = parentOf(doc, pointer);
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) {
      throw new PatchError(`array index ${last} out of range at ${pointer}`);
    }
    if (mode === 'add') parent.splice(index, 0, clone(value));
    else parent[index] = clone(value);
  } else if (isJsonObject(parent)) {
    parent[last] = clone(value);
  } else {
    throw new PatchError(`cannot set ${pointer}: parent is not an object or array`);
  }
  return doc;
}

function removeAt(doc: JsonValue, pointer: string): JsonValue {
  const { parent, last } = parentOf(doc, pointer);
  if (Array.isArray(parent)) {
    const index = Number(last);
    if (!Number.isInteger(index) || index < 0 || index >= parent.length) {
      throw new PatchError(`array index ${last} out of range at ${pointer}`);
    }
    parent.splice(index, 1);
  } else if (isJsonObject(parent) && last in parent) {
    delete parent[last];
  } else {
    throw new PatchError(`path ${pointer} does not exist`);
  }
  return doc;
}
