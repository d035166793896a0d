import { isDeepStrictEqual } from 'node:util';
import type { JsonPatchOp } from '../../src/k8s/httproute-shape.js';

// RFC 6902 as the API server applies it (add/remove/replace/test), for unit tests of patch
// builders: a failed `test` throws, as the server answers 422 and writes nothing.

export class PatchTestFailed extends Error {}

function parent(doc: unknown, path: string): { container: Record<string, unknown> | unknown[]; key: string } {
  const parts = path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const key = parts.pop() as string;
  let container = doc as Record<string, unknown>;
  for (const p of parts) {
    const next = Array.isArray(container) ? container[Number(p)] : container[p];
    if (next === undefined || next === null || typeof next !== 'object') throw new PatchTestFailed(`no ${path}`);
    container = next as Record<string, unknown>;
  }
  return { container, key };
}

export function applyPatch<T>(doc: T, ops: readonly JsonPatchOp[]): T {
  const out = structuredClone(doc);
  for (const op of ops) {
    const { container, key } = parent(out, op.path);
    const arr = Array.isArray(container) ? container : undefined;
    const idx = key === '-' ? (arr?.length ?? 0) : Number(key);
    const current = arr ? arr[idx] : (container as Record<string, unknown>)[key];
    if (op.op === 'test') {
      if (!isDeepStrictEqual(current, op.value)) throw new PatchTestFailed(`test ${op.path} failed`);
    } else if (op.op === 'remove') {
      if (current === undefined) throw new PatchTestFailed(`remove ${op.path}: absent`);
      if (arr) arr.splice(idx, 1);
      else delete (container as Record<string, unknown>)[key];
    } else if (op.op === 'replace') {
      if (current === undefined) throw new PatchTestFailed(`replace ${op.path}: absent`);
      if (arr) arr[idx] = structuredClone(op.value);
      else (container as Record<string, unknown>)[key] = structuredClone(op.value);
    } else if (arr) arr.splice(idx, 0, structuredClone(op.value));
    else (container as Record<string, unknown>)[key] = structuredClone(op.value);
  }
  return out;
}
