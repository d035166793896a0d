// In-memory storage with one global, increasing resourceVersion (as etcd's revision is), and a
// change feed the server uses to notify watchers and the deployment controller.

import { randomUUID } from 'node:crypto';
import type { ResourceType } from './discovery.js';
import { clone, type KubeObject } from './types.js';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface Change {
  type: ChangeType;
  rt: ResourceType;
  object: KubeObject;
  resourceVersion: number;
}

function keyOf(rt: ResourceType, namespace: string | undefined, name: string): string {
  return `${rt.group}/${rt.resource}/${rt.namespaced ? namespace ?? '' : ''}/${name}`;
}

export class ObjectStore {
  private readonly objects = new Map<string, KubeObject>();
  private revision = 1;
  private readonly listeners = new Set<(change: Change) => void>();

  get currentRevision(): string {
    return String(this.revision);
  }

  onChange(listener: (change: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(rt: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const found = this.objects.get(keyOf(rt, namespace, name));
    return found ? clone(found) : undefined;
  }

  /** Objects of a type, in etcd key order (namespace, then name). */
  list(rt: ResourceType, namespace: string | undefined): KubeObject[] {
    const prefix = `${rt.group}/${rt.resource}/`;
    const scoped = rt.namespaced && namespace ? `${prefix}${namespace}/` : prefix;
    return [...this.objects.entries()]
      .filter(([key]) => key.startsWith(scoped))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, obj]) => clone(obj));
  }

  /** Stores obj as a new revision; fills uid and creationTimestamp on first write. */
  write(rt: ResourceType, obj: KubeObject): KubeObject {
    const metadata = obj.metadata ?? {};
    obj.metadata = metadata;
    const name = metadata.name ?? '';
    const key = keyOf(rt, metadata.namespace, name);
    const existed = this.objects.has(key);
    metadata.uid ??= randomUUID();
    metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.revision += 1;
    metadata.resourceVersion = String(this.revision);
    const stored = clone(obj);
    this.objects.set(key, stored);
    this.emit({ type: existed ? 'MODIFIED' : 'ADDED', rt, object: clone(stored), resourceVersion: this.revision });
    return clone(stored);
  }

  delete(rt: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = keyOf(rt, namespace, name);
    const found = this.objects.get(key);
    if (!found) return undefined;
    this.objects.delete(key);
    this.revision += 1;
    const gone = clone(found);
    if (gone.metadata) gone.metadata.resourceVersion = String(this.revision);
    this.emit({ type: 'DELETED', rt, object: clone(gone), resourceVersion: this.revision });
    return gone;
  }

  private emit(change: Change): void {
    for (const listener of this.listeners) listener(change);
  }
}
