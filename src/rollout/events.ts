import type { CheckRecord } from '../analysis/types.js';
import type { IncidentResult } from './ports.js';
import type { Outcome, Phase, RolloutRecord } from './record.js';

// What the engine tells reporters. Reporters only render; they never influence the rollout.

export type RolloutEvent =
  | { type: 'started'; at: number; record: RolloutRecord; resumed: boolean }
  | { type: 'phase'; at: number; phase: Phase; message: string }
  | { type: 'step'; at: number; stepIndex: number; weight: number; durationMs: number; steps: number }
  | { type: 'check'; at: number; check: CheckRecord; failures: number; inconclusiveRun: number; stepChecks: { done: number; planned: number } }
  | { type: 'traffic'; at: number; weight: number; message: string }
  | { type: 'log'; at: number; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'incident'; at: number; result: IncidentResult }
  | { type: 'finished'; at: number; outcome: Outcome; record: RolloutRecord };

export interface Reporter {
  emit(event: RolloutEvent): void;
  /** Called once at the end so reporters can flush files or stop spinners. */
  close?(): Promise<void> | void;
}

export const silentReporter: Reporter = { emit: () => undefined };

export function fanOut(reporters: Reporter[]): Reporter {
  return {
    emit: (event) => reporters.forEach((r) => r.emit(event)),
    close: async () => {
      for (const r of reporters) await r.close?.();
    },
  };
}
