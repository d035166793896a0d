import type { Reporter, RolloutEvent } from '../rollout/events.js';
import type { Outcome, RolloutRecord } from '../rollout/record.js';

/** `-o json`: one document on stdout at the end, the outcome plus the full record with every check. */
export class JsonReporter implements Reporter {
  private result: { outcome: Outcome; record: RolloutRecord } | undefined;
  private readonly notes: { at: string; level: string; message: string }[] = [];

  constructor(private readonly out: NodeJS.WritableStream) {}

  emit(event: RolloutEvent): void {
    if (event.type === 'finished') this.result = { outcome: event.outcome, record: event.record };
    if (event.type === 'log') this.notes.push({ at: new Date(event.at).toISOString(), level: event.level, message: event.message });
  }

  close(): void {
    if (!this.result) return;
    this.out.write(`${JSON.stringify({ ...this.result, log: this.notes }, null, 2)}\n`);
  }
}
