import { readFileSync } from 'node:fs';
import { CanaryError } from './errors.js';
import type { SecretSource } from './policy/policy.js';

// Secrets come from the environment or from files (e.g. a mounted Kubernetes Secret), never from
// argv or the policy itself. Errors name where we looked, never what we found.

/**
 * Reads a secret from the env var or file `ref` names. `what` names the setting for the error
 * message, e.g. "spec.prometheus.bearerToken".
 */
export function readSecret(ref: SecretSource, what: string): string {
  if (ref.env) {
    const value = process.env[ref.env];
    if (value === undefined) {
      throw new CanaryError('invalid-input', `${what}: environment variable ${ref.env} is not set; expected it to hold the secret`);
    }
    const secret = stripTrailingNewlines(value);
    if (!secret) throw new CanaryError('invalid-input', `${what}: environment variable ${ref.env} is empty; expected it to hold the secret`);
    return secret;
  }
  if (ref.file) {
    let text: string;
    try {
      text = readFileSync(ref.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'read error';
      throw new CanaryError('invalid-input', `${what}: cannot read secret file ${ref.file} (${code}); expected a readable file holding the secret`);
    }
    const secret = stripTrailingNewlines(text);
    if (!secret) throw new CanaryError('invalid-input', `${what}: secret file ${ref.file} is empty; expected it to hold the secret`);
    return secret;
  }
  throw new CanaryError('invalid-input', `${what}: expected "env" or "file" naming where the secret is`);
}

// `echo token > file` and `kubectl create secret --from-file` leave a newline the server would reject.
function stripTrailingNewlines(value: string): string {
  return value.replace(/[\r\n]+$/, '');
}

/** Replaces every occurrence of each secret (and its URL-encoded form) with "[REDACTED]". */
export function redact(text: string, secrets: readonly string[]): string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
  }
  // Longest first, so a secret that contains another is replaced whole.
  let out = text;
  for (const form of [...forms].sort((a, b) => b.length - a.length)) out = out.split(form).join('[REDACTED]');
  return out;
}
