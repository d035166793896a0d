// The one redaction boundary. Every secret the process learns — from the policy's env and file
// references, the kubeconfig, proxy settings, URLs, headers — is registered here once, in every
// form it can take on the wire or in a log, and every writer of text takes only text that went
// through redact() (the Redacted type below), so a sink that bypasses it does not type-check.
//
// Forms registered for each secret: the raw value; percent-encoded (encodeURIComponent and the
// form encoding, "+" for space); JSON-escaped, with and without "\/" for "/". For credentials
// sent as basic auth (a policy's basicAuth, user:password@ in a URL, a proxy's user info) also
// base64("user:password") and the whole "Basic …" header value; for a bearer token the whole
// "Bearer …" value. Text is redacted as it is printed — parsed JSON is redacted after parsing too
// (redactDeep), so a token that arrived as "a\/b" is caught once decoded to "a/b".

declare const redactedBrand: unique symbol;
/** Text that went through redact(): the only kind the writers (terminal, files, cluster, incidents) accept. */
export type Redacted = string & { readonly [redactedBrand]: true };

export const REDACTED = '[REDACTED]';

/**
 * Shorter values are redacted only beside their name ("org=[REDACTED]", "X-Org: [REDACTED]"):
 * "true" or a tenant such as "shop" redacted wherever it appears would wreck every message.
 */
export const MIN_BARE_SECRET = 8;

/** Bare forms: replaced wherever they appear. */
const bare = new Set<string>();
/** Context forms ("name=value", "Name: value", "\"name\":\"value\""), replaced keeping the name. */
const pairs = new Map<string, string>();
let sorted: { forms: string[]; pairs: [string, string][] } | null = null;

function changed(): void {
  sorted = null;
}

function jsonForms(text: string): string[] {
  const json = JSON.stringify(text).slice(1, -1);
  return [json, json.replace(/\//g, '\\/')];
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Every printable form of `value`: raw, percent- and form-encoded, JSON-escaped (also with "\/"). */
export function formsOf(value: string): string[] {
  const forms = new Set<string>([value, encodeURIComponent(value), new URLSearchParams({ x: value }).toString().slice(2), ...jsonForms(value)]);
  return [...forms].filter(Boolean);
}

/** Redacts `value`, in every form it can take, wherever redact() runs from now on. */
export function registerSecret(value: string | undefined): void {
  if (!value) return;
  for (const form of formsOf(value)) bare.add(form);
  changed();
}

function registerPair(pair: string, replacement: string): void {
  if (!pair || pairs.has(pair)) return;
  pairs.set(pair, replacement);
  changed();
}

/**
 * Basic auth as it goes over the wire: the password alone, base64("user:password") and the whole
 * "Basic …" header value (for Authorization and Proxy-Authorization alike).
 */
export function registerBasicAuth(username: string, password: string): void {
  registerSecret(password);
  const encoded = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
  registerSecret(encoded);
  registerSecret(`Basic ${encoded}`);
}

/** A bearer token and the whole "Bearer …" header value. */
export function registerBearer(token: string): void {
  registerSecret(token);
  registerSecret(`Bearer ${token}`);
}

/**
 * A header value that is a secret (every value the policy does not mark public): the whole value,
 * its credential part after a scheme ("Bearer x", "Basic x"), and — when it is too short to redact
 * bare — the value beside its header name in the forms a log or an echo would show it.
 */
export function registerHeaderValue(name: string, value: string): void {
  if (!value) return;
  if (value.length >= MIN_BARE_SECRET) {
    registerSecret(value);
    const scheme = /^[A-Za-z][\w.-]*\s+(\S.*)$/.exec(value);
    if (scheme?.[1] && scheme[1].length >= MIN_BARE_SECRET) registerSecret(scheme[1]);
    return;
  }
  for (const n of new Set([name, name.toLowerCase()])) {
    for (const v of formsOf(value)) {
      registerPair(`${n}: ${v}`, `${n}: ${REDACTED}`);
      registerPair(`${n}:${v}`, `${n}:${REDACTED}`);
      registerPair(`"${n}":"${v}"`, `"${n}":"${REDACTED}"`);
      registerPair(`"${n}": "${v}"`, `"${n}": "${REDACTED}"`);
      registerPair(`${n}=${v}`, `${n}=${REDACTED}`);
    }
  }
}

/**
 * The parts of a URL that may be credentials: user info (also as basic auth on the wire), and the
 * value of every query parameter (`?access_token=…`), raw and as they appear encoded. A string that
 * does not parse as a URL still has its user info (everything between "//" and the last "@")
 * registered, so a malformed URL's password is never printed.
 */
export function registerUrlSecrets(url: string | undefined): void {
  if (!url) return;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    registerMalformedUrl(url);
    return;
  }
  // "htp:/user:pass@host" parses (a path, not user info): treat any "@" outside http(s) as user info.
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:' && url.includes('@')) registerMalformedUrl(url);
  if (parsed.password || parsed.username) {
    const user = decodeSafe(parsed.username);
    const password = decodeSafe(parsed.password);
    for (const p of new Set([parsed.password, password])) registerSecret(p);
    registerBasicAuth(user, password);
    if (parsed.username.length >= MIN_BARE_SECRET && !parsed.password) registerSecret(user);
  }
  for (const raw of parsed.search.replace(/^\?/, '').split('&')) {
    const eq = raw.indexOf('=');
    if (eq <= 0 || eq === raw.length - 1) continue;
    const value = raw.slice(eq + 1);
    if (value.length >= MIN_BARE_SECRET) registerSecret(value);
    registerPair(raw, `${raw.slice(0, eq)}=${REDACTED}`);
  }
  for (const [name, value] of parsed.searchParams) {
    if (!value) continue;
    if (value.length >= MIN_BARE_SECRET) registerSecret(value);
    for (const n of new Set([name, encodeURIComponent(name)])) {
      for (const v of formsOf(value)) registerPair(`${n}=${v}`, `${n}=${REDACTED}`);
    }
  }
}

function registerMalformedUrl(url: string): void {
  const start = /^[a-z][a-z0-9+.-]*:\/*/i.exec(url)?.[0].length ?? 0;
  const at = url.lastIndexOf('@');
  if (at > start) {
    const userinfo = url.slice(start, at);
    registerSecret(userinfo);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) {
      const password = userinfo.slice(colon + 1);
      if (password) registerBasicAuth(decodeSafe(userinfo.slice(0, colon)), decodeSafe(password));
      registerSecret(password);
    }
  }
  const q = url.indexOf('?');
  if (q >= 0) for (const part of url.slice(q + 1).split('&')) if (part.length >= MIN_BARE_SECRET) registerSecret(part.slice(part.indexOf('=') + 1));
}

/** Proxy URLs from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, lower-case too): their user info is a secret. */
export function registerProxyEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) {
    const value = env[name];
    if (value) registerUrlSecrets(value.includes('://') ? value : `http://${value}`);
  }
}

/** Forgets every registered secret (tests). */
export function clearRegisteredSecrets(): void {
  bare.clear();
  pairs.clear();
  changed();
}

function order(): { forms: string[]; pairs: [string, string][] } {
  // Longest first, so a secret that contains another is replaced whole.
  sorted ??= {
    forms: [...bare].sort((a, b) => b.length - a.length),
    pairs: [...pairs].sort((a, b) => b[0].length - a[0].length),
  };
  return sorted;
}

function replaceAll(text: string, needle: string, replacement: string): string {
  return text.includes(needle) ? text.split(needle).join(replacement) : text;
}

/**
 * Replaces every registered secret (in every registered form), and each of `extra` (raw and
 * encoded), with "[REDACTED]". The only way to make a Redacted string.
 */
export function redact(text: string, extra: readonly string[] = []): Redacted {
  let out = text;
  const { forms, pairs: named } = order();
  // Pairs first: "name=value" keeps its name, and covers values too short to redact bare.
  for (const [pair, replacement] of named) out = replaceAll(out, pair, replacement);
  const extraForms = extra.filter(Boolean).flatMap(formsOf);
  const all = extraForms.length ? [...new Set([...forms, ...extraForms])].sort((a, b) => b.length - a.length) : forms;
  for (const form of all) out = replaceAll(out, form, REDACTED);
  return out as Redacted;
}

/** A copy of `value` with redact() applied to every string in it, keys included (records, recordings, incidents). */
export function redactDeep<T>(value: T, extra: readonly string[] = []): T {
  if (typeof value === 'string') return redact(value, extra) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v, extra)) as T;
  // Plain data only (JSON-shaped records, recordings, incidents); anything else is left as it is.
  if (typeof value === 'object' && value !== null && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[redact(k, extra)] = redactDeep(v, extra);
    return out as T;
  }
  return value;
}

/**
 * JSON text of `value`, redacted twice over: every string before serialising (the decoded form),
 * and the serialised text (the escaped forms), so neither "a/b" nor "a\/b" survives.
 */
export function redactedJson(value: unknown, indent?: number): Redacted {
  return redact(JSON.stringify(redactDeep(value), null, indent) ?? 'null');
}

/** Text built only from Redacted parts is Redacted. */
export function joinRedacted(parts: readonly Redacted[], separator = ''): Redacted {
  return parts.join(separator) as Redacted;
}
