import { appendFileSync, writeFileSync } from 'node:fs';
import { redact, type Redacted } from './registry.js';

// Writers of text that leaves the process. Each takes only Redacted text, so a caller has to go
// through redact() (or redactedJson()) to write at all: the type system holds the boundary.

/** A stream that takes only redacted text (the terminal, -o json, workflow commands). */
export interface TextSink {
  write(text: Redacted): void;
}

/** Wraps a Node stream so that only Redacted text can be written to it. */
export function textSink(stream: NodeJS.WritableStream): TextSink {
  return { write: (text: Redacted) => void stream.write(text) };
}

/** Appends redacted text to a file (GITHUB_STEP_SUMMARY, GITHUB_OUTPUT). */
export function appendRedacted(path: string, text: Redacted): void {
  appendFileSync(path, text);
}

/** Writes redacted text to a file (recordings). */
export function writeRedacted(path: string, text: Redacted, mode?: number): void {
  writeFileSync(path, text, mode === undefined ? undefined : { mode });
}

let guarded = false;

/**
 * The backstop behind the typed writers: every string or buffer written to stdout and stderr —
 * ours, commander's, a library's — is redacted on its way out. Installed once at start-up.
 */
export function guardProcessOutput(): void {
  if (guarded) return;
  guarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk === 'string') return original(redact(chunk), ...rest);
      if (chunk instanceof Uint8Array) return original(redact(Buffer.from(chunk).toString('utf8')), ...rest);
      return original(chunk, ...rest);
    }) as typeof stream.write;
  }
}
