// The rollout record in a ConfigMap: optimistic concurrency, corruption, and the size cap.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CheckRecord } from '../../src/analysis/types.js';
import { ConfigMapStateStore, CorruptRecordError, MAX_RECORD_BYTES, RECORD_KEY } from '../../src/k8s/configmap-state-store.js';
import { connect } from '../../src/k8s/connection.js';
import { StateConflictError } from '../../src/rollout/ports.js';
import { emptyTallies, type RolloutRecord } from '../../src/rollout/record.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/server.js';
import { rolloutRecord } from '../support/records.js';
import { waitFor } from '../support/wait.js';

let fake: FakeKube;

beforeEach(async () => {
  fake = await startFakeKube({ namespaces: ['default', 'shop'] });
});
afterEach(async () => {
  vi.useRealTimers();
  await fake.stop();
});

function store(): ConfigMapStateStore {
  const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
  return new ConfigMapStateStore({ kc, namespace: 'shop', target: 'checkout', retry: { sleep: async () => undefined } });
}

function check(index: number, queryText = 'sum(rate(nginx_ingress_controller_requests{canary!=""}[1m]))'): CheckRecord {
  return {
    index,
    at: new Date(Date.UTC(2025, 0, 1, 0, index)).toISOString(),
    stepIndex: 0,
    weight: 10,
    verdict: 'pass',
    results: [
      { metric: 'error-rate', check: 'error rate ≤ 5%', judge: 'threshold', critical: true, unit: 'ratio', canary: 0.01, stable: 0.01, threshold: 0.05, verdict: 'pass', reason: 'ok', queries: [queryText], evidence: { requests: 1200 } },
    ],
  };
}

function record(checks: CheckRecord[] = [check(1)]): RolloutRecord {
  return rolloutRecord({
    id: 'checkout-20250101T000000Z',
    stepIndex: 0,
    weight: 10,
    startedBy: 'https://github.com/acme/shop/actions/runs/1',
    startedAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:01:00.000Z',
    policy: { name: 'default', source: 'policies/default.yaml', plannedChecks: 40, intervalMs: 60_000, steps: [{ weight: 10, durationMs: 900_000 }] },
    steps: [{ index: 0, weight: 10, startedAt: '2025-01-01T00:00:00.000Z' }],
    checks,
  });
}

describe('ConfigMapStateStore', () => {
  it('creates the record, labels it as ours, and reads it back exactly', async () => {
    const s = store();
    expect(await s.load()).toBeNull();
    const version = await s.save(record(), null);

    const cm = fake.get('ConfigMap', 'shop', 'checkout-canary-rollout');
    expect(cm?.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'canary-cli', 'canary-cli.dev/target': 'checkout' });
    expect(cm?.metadata?.resourceVersion).toBe(version);
    expect(await s.load()).toEqual({ record: record(), version });
  });

  it('replaces with the expected resourceVersion as a precondition', async () => {
    const s = store();
    const v1 = await s.save(record(), null);
    const next = { ...record([check(1), check(2)]), weight: 25 };
    const v2 = await s.save(next, v1);
    expect(v2).not.toBe(v1);
    expect(fake.requests.filter((r) => r.method === 'PUT').map((r) => (r.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion)).toEqual([v1]);
    expect((await s.load())?.record.weight).toBe(25);
  });

  it('a stale write is a StateConflictError carrying what is stored now', async () => {
    const s = store();
    const v1 = await s.save(record(), null);
    const rollback = { ...record(), phase: 'rolled-back' as const, rollback: { reason: 'pager', requestedBy: 'alice', at: '2025-01-01T00:02:00.000Z' } };
    const theirs = await store().save(rollback, v1);

    const err = await s.save({ ...record(), weight: 50 }, v1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateConflictError);
    expect((err as StateConflictError).current).toEqual({ record: rollback, version: theirs });
    expect((await s.load())?.record.phase).toBe('rolled-back');
  });

  it('creating when a record already exists is a conflict with the stored record', async () => {
    const v1 = await store().save(record(), null);
    const err = await store().save({ ...record(), id: 'checkout-other' }, null).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateConflictError);
    expect((err as StateConflictError).current?.version).toBe(v1);
    expect((err as StateConflictError).current?.record.id).toBe('checkout-20250101T000000Z');
  });

  it('a create that timed out but landed, then retried, is not mistaken for someone else\'s record', async () => {
    const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
    // The first POST is held until the client has given up on it: its 100 ms timeout runs on
    // virtual time, moved only once the API server holds the request (a loaded machine cannot
    // time it out before it was sent). It is then served, i.e. lands, before the retry, which
    // meets AlreadyExists.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const hold = fake.injectFault({ kind: 'hold', until: held, method: 'POST', pathPattern: '/configmaps' });
    const slow = new ConfigMapStateStore({
      kc,
      namespace: 'shop',
      target: 'checkout',
      // The wait before the retry: only once the timed-out first POST has landed.
      retry: {
        timeoutMs: 100,
        sleep: async () => {
          release();
          await waitFor('the timed-out first POST to land', () => fake.get('ConfigMap', 'shop', 'checkout-canary-rollout') !== undefined, { intervalMs: 0 });
        },
      },
    });
    // A record as the engine writes it: fields after its checks (tallies), which must read back in place.
    const saving = slow.save({ ...record(), tallies: emptyTallies() }, null);
    await waitFor('the API server to hold the first POST', () => hold.hits === 1, { intervalMs: 0 });
    vi.advanceTimersByTime(100);
    const version = await saving;
    vi.useRealTimers();
    // The first POST was cancelled by the client when it timed out, after the server had committed it.
    const posts = fake.requests.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(2);
    expect(posts[1]?.status).toBe(409);
    expect((await store().load())?.version).toBe(version);
  });

  it('a record that is not JSON, or not schemaVersion 1, is reported corrupt with its raw text and version', async () => {
    fake.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'checkout-canary-rollout', namespace: 'shop' }, data: { [RECORD_KEY]: '{"schemaVersion":1,"phase":' } });
    const err = await store().load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptRecordError);
    const corrupt = err as CorruptRecordError;
    expect(corrupt.raw).toBe('{"schemaVersion":1,"phase":');
    expect(corrupt.version).toBe(fake.get('ConfigMap', 'shop', 'checkout-canary-rollout')?.metadata?.resourceVersion);
    expect(corrupt.message).toMatch(/unreadable \(not valid JSON/);
    expect(corrupt.exitCode).toBe(2);

    // `canary rollback` can overwrite it using the version carried by the error.
    await store().save({ ...record(), phase: 'aborted' }, corrupt.version);
    expect((await store().load())?.record.phase).toBe('aborted');

    fake.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'checkout-canary-rollout', namespace: 'shop' }, data: { [RECORD_KEY]: '{"schemaVersion":2}' } });
    await expect(store().load()).rejects.toThrow(/schemaVersion 2, expected 1/);
  });

  it('keeps a huge record under the ConfigMap limit by dropping old checks\' queries, keeping the last 5 complete', async () => {
    const bigQuery = 'x'.repeat(20_000);
    // Distinct texts, so it is the trimming that has to make room, not the repeats being left out.
    const checks = Array.from({ length: 60 }, (_, i) => check(i + 1, `${bigQuery}${i}`));
    const s = store();
    const version = await s.save(record(checks), null);
    const stored = fake.get('ConfigMap', 'shop', 'checkout-canary-rollout') as { data: Record<string, string> };
    expect(Buffer.byteLength(stored.data[RECORD_KEY] ?? '')).toBeLessThanOrEqual(MAX_RECORD_BYTES);

    const loaded = await s.load();
    expect(loaded?.version).toBe(version);
    const got = loaded?.record as RolloutRecord & { trimmed?: boolean };
    expect(got.trimmed).toBe(true);
    expect(got.checks).toHaveLength(60);
    expect(got.checks.slice(-5).every((c, i) => c.results[0]?.queries[0] === `${bigQuery}${55 + i}`)).toBe(true);
    expect(got.checks.slice(0, 55).every((c) => c.results[0]?.queries.length === 0)).toBe(true);
    expect(got.checks[0]?.results[0]?.canary).toBe(0.01);
  });

  it('stores each query text once, and every check reads back with its queries', async () => {
    const checks = Array.from({ length: 20 }, (_, i) => check(i + 1));
    const failing = checks[3];
    if (failing) failing.verdict = 'fail';
    const s = store();
    await s.save(record(checks), null);
    const data = fake.get('ConfigMap', 'shop', 'checkout-canary-rollout')?.['data'] as Record<string, string>;
    const query = checks[0]?.results[0]?.queries[0] ?? 'missing';
    expect((data[RECORD_KEY] ?? '').split(JSON.stringify(query)).length - 1).toBe(1);
    const got = (await s.load())?.record;
    const withQueries = got?.checks.filter((c) => (c.results[0]?.queries.length ?? 0) > 0).map((c) => c.index);
    expect(withQueries).toEqual(checks.map((c) => c.index));
  });
});
