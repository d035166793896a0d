import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { MemoryCluster } from '../../src/k8s/memory-cluster.js';
import { targetNames } from '../../src/policy/policy.js';
import { describeTraffic, finishStop, rollbackHint, stopTraffic } from '../../src/rollout/abort.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import { operatorRollback, type OperatorRollbackPorts, type RecordRead } from '../../src/rollout/operator-rollback.js';
import { StateConflictError, type CallBudget, type OwnRouteState } from '../../src/rollout/ports.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { START } from '../support/times.js';
import { rolloutRecord } from '../support/records.js';

// The one stop path over in-memory ports: every phase, the deadline loop, and the rule that
// nothing but the 0% write happens while a read does not show 0%.

const names = targetNames('checkout', {});
const ctx = { target: 'checkout', namespace: 'shop' };

/** A cluster whose API is down for a number of stop/inspect calls, and that counts scale-downs. */
class FlakyCluster extends MemoryCluster {
  downFor = 0;
  scaleDowns = 0;
  readonly budgets: number[] = [];
  override async stop(marker: string, budget?: CallBudget): Promise<OwnRouteState[]> {
    if (budget) this.budgets.push(budget.timeoutMs);
    if (this.downFor > 0) {
      this.downFor -= 1;
      throw new CanaryError('unreachable', 'Kubernetes API at https://k8s unreachable: ECONNREFUSED');
    }
    return super.stop(marker);
  }
  override async scaleDownCanary(): ReturnType<MemoryCluster['scaleDownCanary']> {
    this.scaleDowns += 1;
    return super.scaleDownCanary();
  }
}

function cluster(weight: number | null): FlakyCluster {
  const c = new FlakyCluster('shop', names, 'shop/checkout:1');
  c.weight = weight;
  c.canaryReplicas = 3;
  return c;
}

describe('stopTraffic', () => {
  it('keeps writing 0% through an outage until a read shows it, each call bounded by the time left', async () => {
    const c = cluster(25);
    c.downFor = 6;
    const clock = new VirtualClock(START);
    const stop = await stopTraffic({ router: c, clock, marker: 'test', deadlineMs: 30_000, callTimeoutMs: 10_000 });
    expect(stop.confirmed).toBe(true);
    expect(stop.attempts).toBe(7);
    expect(c.weight).toBe(0);
    expect(stop.before).toEqual([{ name: 'checkout-canary', weight: 25, overrides: [], stoppedBy: null, rolloutId: null }]);
    expect(c.budgets.every((b) => b <= 10_000 && b >= 1)).toBe(true);
  });

  it('gives up at the deadline without confirming, and says where traffic may be', async () => {
    const c = cluster(25);
    c.downFor = Infinity;
    const clock = new VirtualClock(START);
    const stop = await stopTraffic({ router: c, clock, marker: 'test', deadlineMs: 30_000, callTimeoutMs: 10_000 });
    expect(stop.confirmed).toBe(false);
    expect(clock.now() - START).toBeLessThanOrEqual(30_000);
    // The last calls got only what was left of the deadline.
    expect(Math.min(...c.budgets)).toBeLessThan(10_000);
    expect(describeTraffic(stop, ctx, 'canary last set to 25%')).toBe(
      "canary weight NOT confirmed at 0% (no read got through; canary last set to 25%): Kubernetes API at https://k8s unreachable: ECONNREFUSED; the canary may still get that share of traffic; run `canary rollback checkout -n shop --reason '...'`",
    );
  });

  it('a route raised again between the write and the read is written again', async () => {
    const c = cluster(25);
    let raises = 2; // MemoryCluster.stop reads once itself
    const inspect = c.inspect.bind(c);
    c.inspect = async () => {
      if (raises-- > 0) c.weight = 25; // a raise that was already past its fence
      return inspect();
    };
    const stop = await stopTraffic({ router: c, clock: new VirtualClock(START), marker: 'test', deadlineMs: 30_000, callTimeoutMs: 10_000 });
    expect(stop.confirmed).toBe(true);
    expect(stop.attempts).toBe(2);
    expect(c.weight).toBe(0);
  });

  it('a rejection that retrying cannot fix (403) ends the loop at once', async () => {
    const c = cluster(25);
    c.stop = async () => {
      throw new CanaryError('invalid-input', 'Kubernetes API refused setting the canary weight: forbidden');
    };
    const stop = await stopTraffic({ router: c, clock: new VirtualClock(START), marker: 'test', deadlineMs: 30_000, callTimeoutMs: 10_000 });
    expect(stop).toMatchObject({ confirmed: false, permanent: true, attempts: 1 });
  });
});

describe('stopTraffic bounded by the Lease', () => {
  /** A deploy's Lease renewed until `lostAt` (virtual ms), then past its renew deadline until `backAt`. */
  function leaseUntil(clock: VirtualClock, lostAt: number, backAt = Infinity): () => string | null {
    return () => {
      const t = clock.now() - START;
      return t >= lostAt && t < backAt ? 'the Lease shop/checkout-canary could not be renewed past its renew deadline' : null;
    };
  }

  /**
   * A canary at 25% behind an API that is down, and a router on it that notes when (virtual ms
   * after START) each 0% write was tried; `onWrite` runs just before that write goes out.
   */
  function downAt25(clock: VirtualClock, onWrite: (at: number, c: FlakyCluster) => void = () => undefined) {
    const c = cluster(25);
    c.downFor = Infinity;
    const writes: number[] = [];
    const router = Object.assign(Object.create(c) as FlakyCluster, {
      stop: async (marker: string, budget?: CallBudget) => {
        const at = clock.now() - START;
        writes.push(at);
        onWrite(at, c);
        return c.stop(marker, budget);
      },
    });
    return { c, router, writes };
  }

  it('past the renew deadline the deploy writes nothing more, says so, and at the stop deadline names canary rollback', async () => {
    const clock = new VirtualClock(START);
    const { router, writes } = downAt25(clock);
    const said: string[] = [];
    const stop = await stopTraffic({ router, clock, marker: 'test', deadlineMs: 300_000, callTimeoutMs: 10_000, onRetry: (m) => said.push(m), mayAct: leaseUntil(clock, 40_000) });
    expect(stop.confirmed).toBe(false);
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.every((t) => t < 40_000)).toBe(true);
    // The stop still waited out its deadline (the Lease might have been renewed), writing nothing.
    expect(clock.now() - START).toBeGreaterThan(290_000);
    expect(said.filter((m) => m.includes('waits for the Lease'))).toHaveLength(1);
    expect(stop.error).toBeInstanceOf(CanaryError);
    expect((stop.error as CanaryError).kind).toBe('unreachable');
    expect(describeTraffic(stop, ctx, 'canary last set to 25%')).toMatch(/NOT confirmed at 0%.*could not be renewed past its renew deadline.*run `canary rollback checkout -n shop/);
  });

  it('a Lease renewed again (re-acquired, nobody else took it) lets the stop write again and confirm 0%', async () => {
    const clock = new VirtualClock(START);
    // The API is back when the Lease is renewed again.
    const { c, router, writes } = downAt25(clock, (at, down) => {
      if (at >= 60_000) down.downFor = 0;
    });
    const stop = await stopTraffic({ router, clock, marker: 'test', deadlineMs: 300_000, callTimeoutMs: 10_000, mayAct: leaseUntil(clock, 40_000, 60_000) });
    expect(stop.confirmed).toBe(true);
    expect(c.weight).toBe(0);
    expect(writes.filter((t) => t >= 40_000 && t < 60_000)).toEqual([]);
    expect(writes.at(-1)).toBeGreaterThanOrEqual(60_000);
  });
});

describe('finishStop', () => {
  it('during a promotion sets stable back to the recorded image, then scales the canary down', async () => {
    const c = cluster(0);
    c.stable = 'shop/checkout:2';
    const said: string[] = [];
    const done = await finishStop({
      workloads: c,
      clock: new VirtualClock(START),
      callTimeoutMs: 1000,
      restoreStable: { image: 'shop/checkout:1', stableDeployment: 'checkout' },
      canaryStillRouted: false,
      ctx,
      say: (_l, line) => said.push(line),
    });
    expect(c.stable).toBe('shop/checkout:1');
    expect(done).toMatchObject({ restore: { done: true, image: 'shop/checkout:1' }, scaled: 'scaled-to-zero', stable: { available: true } });
  });

  it('when stable cannot be set back, says which image it runs and the command that finishes the job', async () => {
    const c = cluster(0);
    c.stable = 'shop/checkout:2';
    c.promoteStable = async () => {
      throw new CanaryError('unexpected', 'Deployment shop/checkout did not become available');
    };
    const done = await finishStop({
      workloads: c,
      clock: new VirtualClock(START),
      callTimeoutMs: 1000,
      restoreStable: { image: 'shop/checkout:1', stableDeployment: 'checkout' },
      canaryStillRouted: false,
      ctx: { ...ctx, context: 'prod', policyPath: 'policies/checkout.yaml' },
      say: () => undefined,
    });
    expect(done.restore?.done).toBe(false);
    expect(done.restore?.message).toBe(
      "stable Deployment checkout could not be set back to shop/checkout:1: Deployment shop/checkout did not become available; it runs shop/checkout:2; finish with `canary rollback checkout -n shop --context prod -p policies/checkout.yaml --reason '...'` (or `kubectl rollout undo deployment/checkout -n shop --context prod`)",
    );
  });

  it('keeps the canary pods while a route that is not ours still sends them traffic', async () => {
    const c = cluster(0);
    const done = await finishStop({ workloads: c, clock: new VirtualClock(START), callTimeoutMs: 1000, canaryStillRouted: true, ctx, say: () => undefined });
    expect(done.scaled).toBe('kept');
    expect(c.scaleDowns).toBe(0);
  });
});

function record(phase: RolloutRecord['phase'], extra: Partial<RolloutRecord> = {}): RolloutRecord {
  return rolloutRecord({ phase, policy: { name: 'default', source: 'x', plannedChecks: 3, intervalMs: 60_000, steps: [] }, ...extra });
}

function rollbackWorld(c: FlakyCluster, initial: RolloutRecord | null) {
  let stored: { record: RolloutRecord; version: string } | null = initial ? { record: initial, version: '1' } : null;
  const order: string[] = [];
  let leaseDeleted = false;
  const ports: OperatorRollbackPorts = {
    router: c,
    workloads: c,
    loadRecord: async (): Promise<RecordRead> => (stored ? { kind: 'found', stored: structuredClone(stored) } : { kind: 'missing' }),
    saveRecord: async (r, expected) => {
      if ((stored?.version ?? null) !== expected) throw new StateConflictError(stored);
      order.push(`save ${r.phase}`);
      stored = { record: structuredClone(r), version: String(Number(stored?.version ?? 0) + 1) };
      return stored.version;
    },
    lease: {
      observe: async () => ({ holder: 'ci', resourceVersion: '1', uid: 'u' }),
      clear: async () => {
        order.push('lease');
        leaseDeleted = true;
        return { result: 'deleted' };
      },
    },
    event: async (reason) => {
      order.push(`event ${reason}`);
      return undefined;
    },
    openIncidents: async () => [],
  };
  const lines: string[] = [];
  const go = () =>
    operatorRollback(ports, {
      ctx,
      names,
      policy: { name: 'default', source: 'x', intervalMs: 60_000, steps: [] },
      reason: 'pager',
      requestedBy: 'alice',
      clock: new VirtualClock(START),
      deadlineMs: 30_000,
      callTimeoutMs: 10_000,
      incidents: true,
      say: (l) => lines.push(l),
    });
  return { go, lines, order, stored: () => stored?.record ?? null, leaseDeleted: () => leaseDeleted };
}

describe('operatorRollback, phase by phase', () => {
  it('progressing: 0% first, then the record, the canary, the Lease; what it reports is re-read', async () => {
    const c = cluster(25);
    const w = rollbackWorld(c, record('progressing'));
    const report = await w.go();
    expect(report.exitCode).toBe(0);
    expect(c.weight).toBe(0);
    expect(w.lines).toContain('canary Ingress checkout-canary: weight 25% → 0%, all traffic on stable');
    expect(w.lines).toContain('weight in force (re-read): checkout-canary 0%');
    expect(w.stored()).toMatchObject({ phase: 'aborted', weight: 0, rollback: { reason: 'pager', stableVerified: true } });
    // Through the stop machine: one write per transition (requested → … → recorded), the Lease, released.
    expect(w.order).toEqual(['save rolling-back', 'save rolling-back', 'save rolling-back', 'save rolling-back', 'save aborted', 'lease', 'save aborted', 'event CanaryRolledBack']);
    expect(w.stored()?.stop).toMatchObject({ state: 'released', requestedBy: 'alice', result: 'aborted', token: expect.stringMatching(/^rollback by alice at /) });
    expect(c.canaryReplicas).toBe(0);
  });

  it('promoting: 0% first, then stable back to the recorded image and waited for', async () => {
    const c = cluster(100);
    c.stable = 'shop/checkout:2';
    const w = rollbackWorld(c, record('promoting', { promotion: 'updating-stable', weight: 100 }));
    const report = await w.go();
    expect(report.exitCode).toBe(0);
    expect(c.weight).toBe(0);
    expect(c.stable).toBe('shop/checkout:1');
    expect(w.lines).toContain('stable Deployment checkout set back to shop/checkout:1 and available');
    expect(w.stored()?.rollback?.stableRestore).toEqual({ image: 'shop/checkout:1', done: true, message: 'stable Deployment checkout set back to shop/checkout:1 and available' });
  });

  it('promoted: refuses with the kubectl rollout undo hint, exit 1, record untouched', async () => {
    const c = cluster(0);
    c.stable = 'shop/checkout:2';
    const w = rollbackWorld(c, record('promoted', { weight: 0 }));
    const report = await w.go();
    expect(report.exitCode).toBe(1);
    expect(w.lines.join('\n')).toContain('canary rollback cannot undo a promotion: run kubectl rollout undo deployment/checkout -n shop');
    expect(w.order).toEqual([]);
    expect(w.leaseDeleted()).toBe(false);
  });

  it('an outage past the deadline: exit 5, and no scale-down, record, Lease or Event while no read showed 0%', async () => {
    const c = cluster(25);
    c.downFor = Infinity;
    const w = rollbackWorld(c, record('progressing'));
    await expect(w.go()).rejects.toMatchObject({ kind: 'unreachable' });
    expect(c.scaleDowns).toBe(0);
    expect(c.canaryReplicas).toBe(3);
    expect(w.order).toEqual([]);
    expect(w.stored()?.phase).toBe('progressing');
  });

  it('a canary Ingress that is not ours sending 5%: reported, left alone, never "all traffic on stable", no invented record', async () => {
    const c = cluster(null);
    c.foreign = [{ name: 'hand-made-canary', weight: 5, overrides: [] }];
    const w = rollbackWorld(c, null);
    const report = await w.go();
    expect(report.exitCode).toBe(1);
    expect(report.traffic).toContain('traffic is NOT all on stable: Ingress hand-made-canary (not ours) sends 5% to the canary');
    expect(w.lines.join('\n')).not.toContain('all traffic on stable');
    expect(w.lines.join('\n')).not.toContain('all traffic is on stable');
    expect(w.order).toEqual([]);
    expect(c.canaryReplicas).toBe(3);
  });

  it('hints carry the namespace, context and policy so they work pasted as is', () => {
    expect(rollbackHint({ target: 'checkout', namespace: 'shop', context: 'prod eu', policyPath: 'p.yaml' })).toBe(
      "canary rollback checkout -n shop --context 'prod eu' -p p.yaml --reason '...'",
    );
  });
});
