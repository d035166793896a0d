import * as z from 'zod';
import { text } from './zod-fields.js';
import { displayHeaders, headersSchema, type HeaderSource } from './headers.js';
import { describeInput, parseDuration } from './units.js';
import { registerHeaderValue } from '../secrets.js';

// spec.hooks: commands run at fixed points of a rollout (docs/hooks.md), each an argv run without
// a shell, with the rollout's context in its environment. Values the policy adds to that
// environment are written like header values (src/policy/headers.ts): a secret unless marked
// public, never echoed in a message.

export const HOOK_POINTS = ['pre-rollout', 'step', 'pre-promotion', 'post-rollout'] as const;
export type HookPoint = (typeof HOOK_POINTS)[number];

export interface HookSpec {
  name: string;
  at: HookPoint;
  /** argv: the executable, then its arguments; no shell. */
  command: string[];
  timeoutMs: number;
  /** Added to the hook's environment; secret unless public. */
  env: Record<string, HeaderSource>;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 60_000;
const MAX_HOOK_TIMEOUT_MS = 60 * 60_000;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The context variables the runner sets: a policy may not shadow them. */
export const RESERVED_ENV_PREFIX = 'CANARY_';

const command = z.unknown().transform((value, ctx) => {
  if (!Array.isArray(value) || value.length === 0 || !value.every((a) => typeof a === 'string') || (value[0] as string).trim() === '' || value.some((a) => (a as string).includes('\0'))) {
    // What came is described, never quoted: a token pasted here must not land in a CI log.
    const got = Array.isArray(value) ? (value.length === 0 ? 'an empty list' : 'a list with an empty executable or a non-text item') : value === null ? 'null' : `a ${typeof value}`;
    ctx.addIssue({ code: 'custom', message: `expected a list like [./scripts/check.sh, --strict]: the executable, then its arguments (run without a shell), got ${got}` });
    return z.NEVER;
  }
  return value as string[];
});

const timeout = z.unknown().transform((value, ctx) => {
  const ms = typeof value === 'string' ? parseDuration(value) : null;
  if (ms === null || ms <= 0 || ms > MAX_HOOK_TIMEOUT_MS) {
    ctx.addIssue({ code: 'custom', message: `expected a timeout like "30s" or "5m", at most 1h, got ${describeInput(value)}` });
    return z.NEVER;
  }
  return ms;
});

const at = z.unknown().transform((value, ctx) => {
  if (typeof value !== 'string' || !(HOOK_POINTS as readonly string[]).includes(value)) {
    ctx.addIssue({ code: 'custom', message: `expected one of ${HOOK_POINTS.join(', ')}, got ${describeInput(value)}` });
    return z.NEVER;
  }
  return value as HookPoint;
});

const env = z
  .unknown()
  .superRefine((value, ctx) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
    for (const name of Object.keys(value)) {
      if (!ENV_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'expected an environment variable name (letters, digits, "_", not starting with a digit)' });
      else if (name.toUpperCase().startsWith(RESERVED_ENV_PREFIX)) ctx.addIssue({ code: 'custom', path: [name], message: `names starting with ${RESERVED_ENV_PREFIX} are the rollout's context, set by canary; choose another name` });
    }
  })
  .pipe(headersSchema);

const hookSchema = z
  .object({
    name: text('a hook name'),
    at,
    command,
    timeout: timeout.optional(),
    env: env.optional(),
  })
  .strict();

export const hooksSchema = z.array(hookSchema);

export type HooksInput = z.output<typeof hooksSchema>;

export function resolveHooks(input: HooksInput | undefined): HookSpec[] | undefined {
  if (!input?.length) return undefined;
  return input.map((h) => ({ name: h.name, at: h.at, command: h.command, timeoutMs: h.timeout ?? DEFAULT_HOOK_TIMEOUT_MS, env: h.env ?? {} }));
}

/** Cross-field problems: names are how output, the record and `status` tell hooks apart. */
export function checkHooks(hooks: readonly HookSpec[] | undefined, problems: string[]): void {
  const seen = new Set<string>();
  (hooks ?? []).forEach((h, i) => {
    if (seen.has(h.name)) problems.push(`spec.hooks[${i}].name: "${h.name}" is used twice`);
    seen.add(h.name);
  });
}

/** The hooks as `validate` shows them: env values only when public. */
export function displayHooks(hooks: readonly HookSpec[]): unknown[] {
  return hooks.map((h) => {
    for (const [name, v] of Object.entries(h.env)) if (!v.public && v.value !== undefined) registerHeaderValue(name, v.value);
    return { ...h, env: displayHeaders(h.env) };
  });
}
