import type { CheckRecord } from '../../src/analysis/types.js';
import { emptyTallies, keepCheck, type RolloutRecord } from '../../src/rollout/record.js';
import { VirtualClock } from '../../src/rollout/clock.js';
import { checkoutEngine } from './checkout-engine.js';
import { defaultPolicy } from './policies.js';
import { healthy, ScriptedMetrics } from './scripted-metrics.js';
import { START } from './times.js';

// Rollout records built by hand, for tests of what reads them (status, the store, the stop
// machine): one base a test changes only where its case differs, so a field added to the record
// is added here once.

/** A `checkout` rollout at 25% in its second step, started at START by "ci", with no checks yet. */
export function rolloutRecord(over: Partial<RolloutRecord> = {}): RolloutRecord {
  return {
    schemaVersion: 1,
    id: 'checkout-20260115T100000Z',
    target: 'checkout',
    namespace: 'shop',
    phase: 'progressing',
    stepIndex: 1,
    weight: 25,
    images: { stable: 'shop/checkout:1', canary: 'shop/checkout:2' },
    startedBy: 'ci',
    startedAt: new Date(START).toISOString(),
    updatedAt: new Date(START).toISOString(),
    policy: { name: 'default', source: 'policies/default.yaml', plannedChecks: 40, intervalMs: 60_000, steps: [] },
    steps: [],
    checks: [],
    ...over,
  };
}

/**
 * A one-step rollout at 10% that has run `checks` checks, each a copy of `template` with its own
 * index, kept as the engine keeps them (the last `historyLimit`), with tallies.
 */
export function recordWithChecks(checks: number, template: CheckRecord, historyLimit: number): RolloutRecord {
  const record = rolloutRecord({
    stepIndex: 0,
    weight: 10,
    startedBy: 'test',
    policy: { name: 'default', source: 'policies/default.yaml', plannedChecks: checks, intervalMs: 10_000, steps: [{ weight: 10, durationMs: checks * 10_000 }] },
    steps: [{ index: 0, weight: 10, startedAt: new Date(START).toISOString() }],
    tallies: emptyTallies(),
  });
  for (let i = 1; i <= checks; i += 1) keepCheck(record, { ...structuredClone(template), index: i }, historyLimit);
  return record;
}

/** A check as the shipped sequential policy records it (its 5th, healthy), for size figures. */
export async function realisticCheck(): Promise<CheckRecord> {
  let check: CheckRecord | undefined;
  const { engine } = checkoutEngine({
    policy: defaultPolicy(),
    metrics: new ScriptedMetrics(START, healthy),
    clock: new VirtualClock(START),
    onEvent: (e) => {
      if (e.type === 'check' && e.check.index === 5) check = e.check;
    },
  });
  await engine.run();
  if (!check) throw new Error('the default policy ran no 5th check');
  return check;
}
