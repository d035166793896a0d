import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scalar } from '../support/fake-prometheus.js';
import { answer, NAMESPACE, startLiveWorld, type LiveWorld } from '../support/live-harness.js';

// A runner whose clock is ahead of Prometheus's by a window would ask about windows Prometheus has
// not filled yet: every check inconclusive, then a rollback. The preflight refuses it first.

let world: LiveWorld;
beforeAll(async () => {
  world = await startLiveWorld();
});
afterAll(async () => {
  await world?.stop();
});

describe('clock skew preflight', () => {
  it('refuses a deploy whose clock is 2 minutes ahead of Prometheus, naming both times, and writes nothing', async () => {
    world.reset();
    // Prometheus's clock runs 2 minutes behind the runner's (the test policy's window is 1 s).
    world.prom.setHandler((req) => (req.params['query'] === 'time()' ? scalar((Date.now() - 120_000) / 1000) : answer('healthy', req)));
    const run = await world.deploy().done;
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`cannot start a rollout of checkout in namespace ${NAMESPACE}; nothing was changed`);
    expect(run.stderr).toMatch(/this machine's clock is 2m ahead of Prometheus's \(here \d{4}-\d\d-\d\dT[\d:.]+Z, Prometheus at http:\/\/127\.0\.0\.1:\d+ \d{4}-\d\d-\d\dT[\d:.]+Z, measured over a \d+ ms round trip\)/);
    expect(run.stderr).toContain('fix this machine\'s clock (NTP) and deploy again');
    expect(world.changes()).toEqual([]);
    expect(world.record()).toBeUndefined();
  });
});
