import { textSink, type TextSink } from '../redaction/sinks.js';
import type { Reporter, RolloutEvent } from '../rollout/events.js';
import { redact, redactedJson } from '../secrets.js';
import type { Outcome, RolloutRecord } from '../rollout/record.js';

/** `-o json`: one document on stdout at the end, the outcome plus the full record with every check. */
export class JsonReporter implements Reporter {
  private result: { outcome: Outcome; record: RolloutRecord } | undefined;
  private readonly notes: { at: string; level: string; message: string }[] = [];

  /** stdout, taking only redacted text. */
  private readonly out: TextSink;

  constructor(out: NodeJS.WritableStream) {
    this.out = textSink(out);
  }

  emit(event: RolloutEvent): void {
    if (event.type === 'finished') this.result = { outcome: event.outcome, record: event.record };
    if (event.type === 'log') this.notes.push({ at: new Date(event.at).toISOString(), level: event.level, message: event.message });
  }

  close(): void {
    if (!this.result) return;
    this.out.write(redact(`${redactedJson({ ...this.result, log: this.notes }, 2)}\n`));
  }
}
