// Smoke tests before traffic (and, if the policy asks, after each step): the use case over the
// SmokeTester port. The engine calls runSmokePhase; the HTTP adapter is src/http/smoke-client.ts.

import type { SmokeTestSettings, SmokeTestSpec } from '../policy/smoke-schema.js';
import { EXIT } from '../errors.js';
import { Halt } from './halt.js';
import type { SmokeResult, SmokeRunRecord } from './record.js';

export type { SmokeResult, SmokeRunRecord } from './record.js';

/** The port: runs each test against the canary (through header routing) and says what it found. */
export interface SmokeTester {
  run(test: SmokeTestSpec): Promise<SmokeResult>;
}


export interface SmokePhaseDeps {
  settings: SmokeTestSettings;
  /** Absent in a dry-run or a replay: there is no canary to send requests to. */
  tester?: SmokeTester;
  phase: string;
  now: () => string;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  throwIfCancelled: () => void;
}

/** One line of evidence: the request, the status, and an excerpt of the response. */
export function describeResult(r: SmokeResult): string {
  const status = r.status === null ? 'no response' : `status ${r.status}`;
  const excerpt = r.excerpt ? `; response: ${JSON.stringify(r.excerpt)}` : '';
  const tries = r.attempts > 1 ? ` after ${r.attempts} attempts` : '';
  return `smoke test "${r.name}" ${r.ok ? 'passed' : 'failed'}${tries}: ${r.method} ${r.url} → ${status}${r.ok ? '' : ` (${r.reason})`}${r.ok ? '' : excerpt}`;
}

/**
 * Runs every test in order (all of them, so the evidence is complete), then throws a Halt
 * (rolled back, exit 3) naming each failing test. Returns the run for the record, or null when
 * there was nothing to run against (dry-run, replay).
 */
export async function runSmokePhase(deps: SmokePhaseDeps): Promise<SmokeRunRecord | null> {
  const { settings, tester, phase, log } = deps;
  const n = settings.tests.length;
  if (!tester) {
    log('info', `would run ${n} smoke test${n === 1 ? '' : 's'} ${phase} (skipped: no canary to send requests to)`);
    return null;
  }
  log('info', `running ${n} smoke test${n === 1 ? '' : 's'} ${phase} against the canary (through header routing; no user traffic reaches it)`);
  const results: SmokeResult[] = [];
  for (const test of settings.tests) {
    deps.throwIfCancelled();
    const result = await tester.run(test);
    results.push(result);
    log(result.ok ? 'info' : 'error', describeResult(result));
  }
  const run: SmokeRunRecord = { at: deps.now(), phase, results };
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    throw new SmokeFailed(`${failed.length} of ${n} smoke test${n === 1 ? '' : 's'} failed ${phase}: ${failed.map(describeResult).join('; ')}`, run);
  }
  log('info', `all ${n} smoke test${n === 1 ? '' : 's'} passed ${phase}`);
  return run;
}

/** A failed smoke phase: rolled back (exit 3), with the run to record as evidence. */
export class SmokeFailed extends Halt {
  constructor(
    message: string,
    readonly run: SmokeRunRecord,
  ) {
    super('rolled-back', message, EXIT.rolledBack);
  }
}
