// The deploy preflight compares this machine's clock with Prometheus's (time(), round trip halved)
// and refuses a skew larger than half the query window, naming both times.

import { afterEach, describe, expect, it } from 'vitest';
import { PrometheusClient } from '../../src/analysis/prometheus-client.js';
import { measureClockSkew, skewProblem } from '../../src/cli/clock-skew.js';
import { scalar, startFakePrometheus, type FakePrometheus } from '../support/fake-prometheus.js';

let prom: FakePrometheus | undefined;
afterEach(async () => {
  await prom?.close();
  prom = undefined;
});

const SERVER = Date.parse('2026-01-15T10:00:00.000Z');

describe('clock skew against Prometheus', () => {
  it('reads time() at the server\'s own now (no time parameter) and compares it with the middle of the round trip', async () => {
    prom = await startFakePrometheus({ handler: () => scalar(SERVER / 1000) });
    const client = new PrometheusClient({ url: prom.url, timeoutMs: 2000, retries: 0 });
    // Sent at +59.9 s, answered at +60.1 s by this machine's clock: 60 s ahead, 200 ms round trip.
    const times = [SERVER + 59_900, SERVER + 60_100];
    const skew = await measureClockSkew(() => client.serverTime(), () => times.shift()!);
    client.close();
    expect(skew).toEqual({ skewMs: 60_000, roundTripMs: 200, localMs: SERVER + 60_000, serverMs: SERVER });
    const sent = prom.queries()[0];
    expect(sent?.params['query']).toBe('time()');
    expect(sent?.params['time']).toBeUndefined();
  });

  it('refuses a runner clock ahead by a whole window, naming both times', () => {
    const problem = skewProblem({ skewMs: 60_000, roundTripMs: 200, localMs: SERVER + 60_000, serverMs: SERVER }, 60_000, 'http://prometheus:9090');
    expect(problem).toBe(
      "this machine's clock is 1m ahead of Prometheus's (here 2026-01-15T10:01:00.000Z, Prometheus at http://prometheus:9090 2026-01-15T10:00:00.000Z, measured over a 200 ms round trip): " +
        'more than half the 1m query window (30s), so checks would judge windows Prometheus has not filled yet; fix this machine\'s clock (NTP) and deploy again',
    );
  });

  it('refuses a clock far behind too, and accepts one within half the window', () => {
    expect(skewProblem({ skewMs: -45_000, roundTripMs: 10, localMs: SERVER - 45_000, serverMs: SERVER }, 60_000, 'http://p')).toContain("45s behind Prometheus's");
    expect(skewProblem({ skewMs: 29_000, roundTripMs: 10, localMs: SERVER + 29_000, serverMs: SERVER }, 60_000, 'http://p')).toBeUndefined();
    expect(skewProblem({ skewMs: -29_000, roundTripMs: 10, localMs: SERVER - 29_000, serverMs: SERVER }, 60_000, 'http://p')).toBeUndefined();
  });

  it('gives a slow round trip the benefit of the doubt: the answer may come from anywhere in it', () => {
    // Measured 31 s with a 4 s round trip: the true skew may be as little as 29 s.
    expect(skewProblem({ skewMs: 31_000, roundTripMs: 4_000, localMs: SERVER + 31_000, serverMs: SERVER }, 60_000, 'http://p')).toBeUndefined();
    expect(skewProblem({ skewMs: 33_000, roundTripMs: 4_000, localMs: SERVER + 33_000, serverMs: SERVER }, 60_000, 'http://p')).toContain('33s ahead');
  });
});
