// The rollout record, held in the cluster so any machine can read or stop a rollout: one
// ConfigMap per target, every write conditional on the resourceVersion last read.

import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import { StateConflictError, type StateStore, type StoredRecord } from '../rollout/ports.js';
import { RECORD_SCHEMA_VERSION, type RolloutRecord } from '../rollout/record.js';
import { isAlreadyExists, isConflict, isNotFound, withKubeRetry } from './api-errors.js';
import { redactDeep } from '../secrets.js';
import { serverOf } from './connection.js';
import { ownershipLabels } from './labels.js';
import type { RetryPolicy } from '../retry.js';
import { inflateQueries, tabulateQueries, type TabulatedRecord } from './record-queries.js';

export const RECORD_KEY = 'record.json';
/** ConfigMaps are capped at 1 MiB; leave room for metadata. */
export const MAX_RECORD_BYTES = 900 * 1024;
/** The most recent checks always keep their queries, even in a trimmed record, so `status` can show what was asked. */
const KEEP_COMPLETE_CHECKS = 5;

export function stateConfigMapName(target: string): string {
  return `${target}-canary-rollout`;
}

/** The stored record cannot be read; `canary rollback` may overwrite it (at `version`). */
export class CorruptRecordError extends CanaryError {
  constructor(
    readonly configMap: string,
    readonly raw: string | undefined,
    readonly version: string,
    why: string,
  ) {
    super(
      'invalid-input',
      `the rollout record in ConfigMap ${configMap} is unreadable (${why}); \`canary rollback\` can still send traffic back to stable and overwrite it`,
    );
    this.name = 'CorruptRecordError';
  }
}

export interface ConfigMapStateStoreOptions {
  kc: KubeConfig;
  namespace: string;
  target: string;
  retry?: RetryPolicy;
}

const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * The record as stored: each distinct query text once (record-queries.ts). The engine already
 * keeps only the last analysis.historyLimit checks, so this is normally one JSON.stringify. Past
 * the ConfigMap's limit (a huge historyLimit, or huge query texts), older checks lose their
 * queries, then their evidence, then (oldest first) whole checks, and the record says it was
 * trimmed: each step is one pass over the record, never a re-serialisation per dropped check.
 */
export function serializeRecord(unredacted: RolloutRecord, limit = MAX_RECORD_BYTES): string {
  // The record is read by anyone with access to the namespace: no registered secret, in any form.
  const record = redactDeep(unredacted);
  const full = JSON.stringify(tabulateQueries(record));
  if (bytes(full) <= limit) return full;
  const trimmed = structuredClone(record);
  const older = trimmed.checks.slice(0, Math.max(0, trimmed.checks.length - KEEP_COMPLETE_CHECKS));
  for (const check of older) for (const result of check.results) result.queries = [];
  const copy = tabulateQueries(trimmed) as TabulatedRecord & { trimmed?: boolean; trimmedChecks?: number };
  copy.trimmed = true;
  let text = JSON.stringify(copy);
  if (bytes(text) <= limit) return text;
  for (const check of copy.checks.slice(0, older.length)) for (const result of check.results) delete result.evidence;
  text = JSON.stringify(copy);
  if (bytes(text) <= limit) return text;
  // Drop the oldest checks whose sizes add up to the excess (each check measured once, plus the
  // comma that separated it and room for the trimmedChecks field).
  let excess = bytes(text) - limit + `,"trimmedChecks":${copy.checks.length}`.length;
  let dropped = 0;
  while (excess > 0 && copy.checks.length - dropped > KEEP_COMPLETE_CHECKS) {
    const check = copy.checks[dropped];
    excess -= bytes(JSON.stringify(check)) + 1;
    dropped += 1;
  }
  copy.checks = copy.checks.slice(dropped);
  copy.trimmedChecks = dropped;
  return JSON.stringify(copy);
}

/** The record from the ConfigMap's text: query positions back to their text (old records as they are). */
export function parseRecordText(raw: string): unknown {
  const parsed = JSON.parse(raw) as unknown;
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? inflateQueries(parsed as RolloutRecord) : parsed;
}

function parseRecord(name: string, cm: V1ConfigMap): StoredRecord {
  const version = cm.metadata?.resourceVersion ?? '';
  const raw = cm.data?.[RECORD_KEY];
  if (raw === undefined) throw new CorruptRecordError(name, undefined, version, `no ${RECORD_KEY} key`);
  let parsed: unknown;
  try {
    parsed = parseRecordText(raw);
  } catch (err) {
    throw new CorruptRecordError(name, raw, version, `not valid JSON: ${(err as Error).message}`);
  }
  const schema = typeof parsed === 'object' && parsed !== null ? (parsed as { schemaVersion?: unknown }).schemaVersion : undefined;
  if (schema !== RECORD_SCHEMA_VERSION) {
    throw new CorruptRecordError(name, raw, version, `schemaVersion ${JSON.stringify(schema)}, expected ${RECORD_SCHEMA_VERSION}`);
  }
  return { record: parsed as RolloutRecord, version };
}

export class ConfigMapStateStore implements StateStore {
  private readonly api: CoreV1Api;
  private readonly name: string;
  private readonly retry: RetryPolicy & { server: string };

  constructor(private readonly opts: ConfigMapStateStoreOptions) {
    this.api = opts.kc.makeApiClient(CoreV1Api);
    this.name = stateConfigMapName(opts.target);
    this.retry = { ...opts.retry, server: serverOf(opts.kc) };
  }

  private get ref(): string {
    return `${this.opts.namespace}/${this.name}`;
  }

  private async read(): Promise<V1ConfigMap | null> {
    const { namespace } = this.opts;
    try {
      return await withKubeRetry(`reading the rollout record ConfigMap ${this.ref}`, (o) => this.api.readNamespacedConfigMap({ name: this.name, namespace }, o), this.retry);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async load(): Promise<StoredRecord | null> {
    const cm = await this.read();
    return cm ? parseRecord(this.ref, cm) : null;
  }

  /** For conflict reports: what is stored now (null when it is gone or unreadable), and its text as stored. */
  private async current(): Promise<{ stored: StoredRecord | null; text?: string }> {
    const cm = await this.read();
    if (!cm) return { stored: null };
    try {
      return { stored: parseRecord(this.ref, cm), text: cm.data?.[RECORD_KEY] };
    } catch (err) {
      if (err instanceof CorruptRecordError) return { stored: null };
      throw err;
    }
  }

  async save(record: RolloutRecord, expectedVersion: string | null): Promise<string> {
    const { namespace, target } = this.opts;
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.name,
        namespace,
        labels: ownershipLabels(target),
        ...(expectedVersion !== null ? { resourceVersion: expectedVersion } : {}),
      },
      data: { [RECORD_KEY]: serializeRecord(record) },
    };
    try {
      const saved =
        expectedVersion === null
          ? await withKubeRetry(`creating the rollout record ConfigMap ${this.ref}`, (o) => this.api.createNamespacedConfigMap({ namespace, body }, o), this.retry)
          : await withKubeRetry(`saving the rollout record ConfigMap ${this.ref}`, (o) => this.api.replaceNamespacedConfigMap({ name: this.name, namespace, body }, o), this.retry);
      return saved.metadata?.resourceVersion ?? '';
    } catch (err) {
      if (isAlreadyExists(err) || isConflict(err) || (expectedVersion !== null && isNotFound(err))) {
        const { stored, text } = await this.current();
        // A retried write whose first attempt did land (timeout, reset) finds its own text: that is success.
        if (stored && text === body.data?.[RECORD_KEY]) return stored.version;
        throw new StateConflictError(stored);
      }
      throw err;
    }
  }
}
