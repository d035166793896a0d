import * as z from 'zod';
import { CanaryError } from '../errors.js';
import { readSource, registerHeaderValue, type SecretSource } from '../secrets.js';

// Extra HTTP headers (spec.prometheus.headers, a webhook sink's headers). Every value is a secret
// unless the policy marks it public: it is registered with the redaction boundary before the first
// request, so an echoing server, a recording or an error never shows it. A value is written in the
// policy, or read like any other secret from an environment variable or a file:
//
//   headers:
//     X-Scope-OrgID: { value: shop, public: true }   # shown in messages and `validate`
//     X-Api-Key: { env: PROM_API_KEY }                # a secret, read at start-up
//     X-Other-Key: { file: /var/run/secrets/key }     # a secret, read at start-up
//     X-Legacy: "literal"                             # a secret too (redacted everywhere)

export interface HeaderSource {
  /** The value as written in the policy; absent when it comes from env or a file. */
  value?: string;
  env?: string;
  file?: string;
  /** Shown in messages and `validate` output; false (a secret) unless the policy says so. */
  public: boolean;
}

const NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const EXPECTED = 'expected a string, or { value: TEXT } / { env: VARIABLE } / { file: PATH } with an optional public: true (the value is not shown: header values are secrets unless marked public)';

function headerSource(raw: unknown): HeaderSource | null {
  if (typeof raw === 'string') return /[\r\n\0]/.test(raw) ? null : { value: raw, public: false };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const o = raw as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => k !== 'public');
  if (keys.length !== 1 || (o['public'] !== undefined && typeof o['public'] !== 'boolean')) return null;
  const isPublic = o['public'] === true;
  const key = keys[0];
  const v = key === undefined ? undefined : o[key];
  if (typeof v !== 'string') return null;
  if (key === 'value') return /[\r\n\0]/.test(v) ? null : { value: v, public: isPublic };
  if ((key === 'env' || key === 'file') && v.trim()) return { [key]: v, public: isPublic };
  return null;
}

/** The schema of a headers mapping; errors name the header and what was expected, never the value. */
export const headersSchema = z.unknown().transform((raw, ctx): Record<string, HeaderSource> => {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    ctx.addIssue({ code: 'custom', message: 'expected a mapping of header names to values (the value is not shown)' });
    return z.NEVER;
  }
  const out: Record<string, HeaderSource> = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (!NAME.test(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'expected an HTTP header name (letters, digits, "-")' });
      continue;
    }
    const source = headerSource(value);
    if (!source) {
      ctx.addIssue({ code: 'custom', path: [name], message: EXPECTED });
      continue;
    }
    out[name] = source;
  }
  return out;
});

/**
 * The header values to send: env and file values read now (exit 2 when missing), and every value
 * not marked public registered with the redaction boundary. `what` names the mapping in errors,
 * e.g. "spec.prometheus.headers".
 */
export function resolveHeaders(headers: Readonly<Record<string, HeaderSource>>, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, source] of Object.entries(headers)) {
    const at = `${what}.${name}`;
    let value: string;
    if (source.value !== undefined) value = source.value;
    // Read without registering: a public value stays readable; a secret one is registered below,
    // bare when long enough, beside its header name when short (a tenant such as "shop").
    else value = readSource(source as SecretSource, at);
    if (/[\r\n\0]/.test(value)) throw new CanaryError('invalid-input', `${at}: expected a value on one line (the value is not shown)`);
    if (!source.public) registerHeaderValue(name, value);
    out[name] = value;
  }
  return out;
}

/** The headers as `validate` shows them: public values, and "[REDACTED]" or where a secret is read from. */
export function displayHeaders(headers: Readonly<Record<string, HeaderSource>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(headers)) {
    if (source.env !== undefined) out[name] = { env: source.env, public: source.public };
    else if (source.file !== undefined) out[name] = { file: source.file, public: source.public };
    else out[name] = source.public ? { value: source.value, public: true } : { value: '[REDACTED]', public: false };
  }
  return out;
}
