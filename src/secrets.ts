import { readFileSync } from 'node:fs';
import { CanaryError } from './errors.js';
import { registerSecret } from './redaction/registry.js';

export {
  clearRegisteredSecrets,
  MIN_BARE_SECRET,
  redact,
  redactDeep,
  redactedJson,
  registerBasicAuth,
  registerBearer,
  registerHeaderValue,
  registerProxyEnv,
  registerSecret,
  registerUrlSecrets,
  REDACTED,
  type Redacted,
} from './redaction/registry.js';

/** Where a secret is read from: an environment variable or a file (a mounted Kubernetes Secret). */
export interface SecretSource {
  env?: string;
  file?: string;
}

// Secrets come from the environment or from files (e.g. a mounted Kubernetes Secret), never from
// argv or the policy itself. Errors name where we looked, never what we found.

/**
 * Reads a secret from the env var or file `ref` names, and registers it with the redaction
 * boundary before returning it: whatever path it takes from here, it is never printed. `what`
 * names the setting for the error message, e.g. "spec.prometheus.bearerToken".
 */
export function readSecret(ref: SecretSource, what: string): string {
  const secret = readSource(ref, what);
  registerSecret(secret);
  return secret;
}

/**
 * Reads a value from env or a file without registering it: for callers that register it their own
 * way (a header value, public or redacted beside its name when short). Errors as readSecret's.
 */
export function readSource(ref: SecretSource, what: string): string {
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

/**
 * A URL safe to print: no user name or password, and every query-parameter value replaced by
 * "[REDACTED]" (the names stay, so an operator can still tell which parameters were sent).
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    const names = [...parsed.searchParams.keys()];
    parsed.search = names.length ? `?${names.map((n) => `${encodeURIComponent(n)}=[REDACTED]`).join('&')}` : '';
    return parsed.toString();
  } catch {
    return unparsableUrl(url);
  }
}


/**
 * What may be shown of a string that is not a URL but was meant to be one: its scheme, if any, and
 * nothing after it — user info with a "/" in the password defeats any pattern that would cut it out.
 */
export function unparsableUrl(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  return scheme ? `${scheme}://… (not a valid URL; not shown, it may hold credentials)` : '(not a valid URL; not shown, it may hold credentials)';
}
