// labelSelector and fieldSelector as kube-apiserver parses them (the subset clients use):
// labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-joined (AND);
// fields: `path=value`, `path==value`, `path!=value`, comma-joined.

import { isJsonObject, type KubeObject } from './types.js';

export type Matcher = (obj: KubeObject) => boolean;

export class SelectorError extends Error {}

function splitTopLevel(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

function checkKey(key: string, requirement: string): string {
  if (!KEY.test(key)) throw new SelectorError(`unable to parse requirement: invalid label key "${key}" in "${requirement}"`);
  return key;
}

function labelRequirement(requirement: string): Matcher {
  const labels = (obj: KubeObject): Record<string, string> => obj.metadata?.labels ?? {};
  const setMatch = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(requirement);
  if (setMatch) {
    const key = checkKey(setMatch[1] ?? '', requirement);
    const values = (setMatch[3] ?? '').split(',').map((v) => v.trim()).filter((v) => v !== '');
    if (setMatch[2] === 'in') return (obj) => values.includes(labels(obj)[key] ?? '\u0000absent');
    return (obj) => !values.includes(labels(obj)[key] ?? '\u0000absent');
  }
  const op = /^([^=!\s]+)\s*(==|!=|=)\s*(.*)$/.exec(requirement);
  if (op) {
    const key = checkKey(op[1] ?? '', requirement);
    const value = (op[3] ?? '').trim();
    if (op[2] === '!=') return (obj) => labels(obj)[key] !== value;
    return (obj) => labels(obj)[key] === value;
  }
  if (requirement.startsWith('!')) {
    const key = checkKey(requirement.slice(1).trim(), requirement);
    return (obj) => !(key in labels(obj));
  }
  const key = checkKey(requirement, requirement);
  return (obj) => key in labels(obj);
}

export function parseLabelSelector(selector: string | null): Matcher {
  if (!selector) return () => true;
  const matchers = splitTopLevel(selector).map(labelRequirement);
  return (obj) => matchers.every((m) => m(obj));
}

function fieldValue(obj: KubeObject, path: string): string {
  let node: unknown = obj;
  for (const part of path.split('.')) {
    if (!isJsonObject(node)) return '';
    node = node[part];
  }
  if (path === 'source' && isJsonObject(node)) return String(node['component'] ?? '');
  return node === undefined || node === null ? '' : String(node);
}

export function parseFieldSelector(selector: string | null, supported: readonly string[]): Matcher {
  if (!selector) return () => true;
  const matchers = splitTopLevel(selector).map((requirement): Matcher => {
    const op = /^([^=!\s]+)\s*(==|!=|=)\s*(.*)$/.exec(requirement);
    if (!op) throw new SelectorError(`invalid selector: '${requirement}'; can't understand '${requirement}'`);
    const field = op[1] ?? '';
    if (!supported.includes(field)) throw new SelectorError(`field label not supported: ${field}`);
    const value = (op[3] ?? '').trim();
    return op[2] === '!=' ? (obj) => fieldValue(obj, field) !== value : (obj) => fieldValue(obj, field) === value;
  });
  return (obj) => matchers.every((m) => m(obj));
}
