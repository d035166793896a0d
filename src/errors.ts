// Errors are values with a category that maps to an exit code; the message is written for the
// operator reading it at 3 a.m.: what went wrong, what was expected, and what state things are in.

export const EXIT = {
  ok: 0,
  unexpected: 1,
  invalidInput: 2,
  rolledBack: 3,
  aborted: 4,
  unreachable: 5,
  /** The post-promotion watch found stable worse than before the rollout and set it back. */
  rolledBackAfterPromotion: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export type ErrorKind = 'invalid-input' | 'unreachable' | 'query-failed' | 'recording-miss' | 'taken-over' | 'unexpected';

export class CanaryError extends Error {
  readonly kind: ErrorKind;
  readonly details: readonly string[];

  constructor(kind: ErrorKind, message: string, details: readonly string[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CanaryError';
    this.kind = kind;
    this.details = details;
  }

  get exitCode(): ExitCode {
    switch (this.kind) {
      case 'invalid-input':
      case 'recording-miss':
        return EXIT.invalidInput;
      case 'unreachable':
      case 'query-failed':
        return EXIT.unreachable;
      case 'taken-over':
        return EXIT.aborted;
      case 'unexpected':
        return EXIT.unexpected;
    }
  }
}

export const invalidInput = (message: string, details: readonly string[] = []) =>
  new CanaryError('invalid-input', message, details);

export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof CanaryError ? err.exitCode : EXIT.unexpected;
}

export function messageOf(err: unknown): string {
  if (err instanceof CanaryError) {
    return err.details.length ? `${err.message}\n${err.details.map((d) => `  - ${d}`).join('\n')}` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
