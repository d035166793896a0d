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

// Secrets known to the whole process: everything that redacts (Prometheus errors and answers,
// recordings, incident messages) also removes these, so a URL's credentials registered once at
// start-up never reach a message, a record or a file, whichever path an error takes.
const registered = new Set<string>();
/** "name=value" pairs of configured URLs' query strings, replaced by "name=[REDACTED]". */
const registeredPairs = new Map<string, string>();

/**
 * Shorter query values are redacted only beside their parameter name ("org=[REDACTED]"): "true" or
 * a tenant such as "shop" redacted wherever it appears would wreck every message; tokens are longer.
 */
export const MIN_BARE_SECRET = 8;

/** Redacts `value` from now on wherever redact() runs. */
export function registerSecret(value: string): void {
  if (value) registered.add(value);
}

/**
 * Registers the parts of a configured URL that may be credentials: the user name and password,
 * and the value of every query parameter (`?access_token=…`), raw and as they appear encoded.
 */
export function registerUrlSecrets(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return;
  }
  for (const part of [parsed.password, decodeSafe(parsed.password)]) registerSecret(part);
  if (parsed.username.length >= MIN_BARE_SECRET) registerSecret(decodeSafe(parsed.username));
  // As written in the URL (what a proxy echoes), whatever encoding it used.
  for (const raw of parsed.search.replace(/^\?/, '').split('&')) {
    const eq = raw.indexOf('=');
    if (eq <= 0 || eq === raw.length - 1) continue;
    const value = raw.slice(eq + 1);
    if (value.length >= MIN_BARE_SECRET) registerSecret(value);
    registeredPairs.set(raw, `${raw.slice(0, eq)}=[REDACTED]`);
  }
  for (const [name, value] of parsed.searchParams) {
    if (!value) continue;
    if (value.length >= MIN_BARE_SECRET) registerSecret(value);
    for (const n of new Set([name, encodeURIComponent(name)])) {
      for (const v of new Set([value, encodeURIComponent(value), new URLSearchParams({ [name]: value }).toString().split('=').slice(1).join('=')])) {
        registeredPairs.set(`${n}=${v}`, `${n}=[REDACTED]`);
      }
    }
  }
}

/** Forgets every registered secret (tests). */
export function clearRegisteredSecrets(): void {
  registered.clear();
  registeredPairs.clear();
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
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
    return url.replace(/\/\/[^/@]*@/, '//').replace(/\?.*$/, '?[REDACTED]');
  }
}

/**
 * Replaces every occurrence of each secret (and its URL-encoded form), and of every registered
 * secret, with "[REDACTED]".
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  // Pairs first: "name=value" keeps its name, and covers values too short to redact bare.
  for (const [pair, replacement] of [...registeredPairs].sort((a, b) => b[0].length - a[0].length)) out = out.split(pair).join(replacement);
  const forms = new Set<string>();
  for (const secret of [...secrets, ...registered]) {
    if (!secret) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
  }
  // Longest first, so a secret that contains another is replaced whole.
  for (const form of [...forms].sort((a, b) => b.length - a.length)) out = out.split(form).join('[REDACTED]');
  return out;
}

/** A copy of `value` with redact() applied to every string in it (for records and recordings). */
export function redactDeep<T>(value: T, secrets: readonly string[] = []): T {
  if (typeof value === 'string') return redact(value, secrets) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v, secrets)) as T;
  // Plain data only (JSON-shaped records, recordings, incidents); anything else is left as it is.
  if (typeof value === 'object' && value !== null && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = redactDeep(v, secrets);
    return out as T;
  }
  return value;
}
