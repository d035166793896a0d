import * as z from 'zod';
import { text } from './zod-fields.js';
import { headersSchema, type HeaderSource } from './headers.js';
import { describeInput, parseDuration } from './units.js';

// spec.smokeTests: HTTP checks run against the canary through header routing before any user is
// routed to it (docs/smoke-tests.md). Every message names what was expected; header values are
// secrets unless marked public (src/policy/headers.ts), so they are never echoed.

export interface SmokeTestSpec {
  name: string;
  method: string;
  /** An absolute http(s) URL; otherwise `path` on the stable Ingress's first host. */
  url?: string;
  path?: string;
  headers: Record<string, HeaderSource>;
  /** Accepted status codes. */
  status: number[];
  /** The body must contain this text. */
  body?: string;
  /** The body must be JSON whose field at `path` (dot-separated) equals `equals`. */
  json?: { path: string; equals: string | number | boolean | null };
  timeoutMs: number;
  /** Tries after the first failing one. */
  retries: number;
}

export interface SmokeTestSettings {
  /** Only "before-traffic" today: before the first weight increase. */
  when: 'before-traffic';
  /** Also run the suite at the end of each step, before the next raise. */
  afterEachStep: boolean;
  tests: SmokeTestSpec[];
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

const status = z.unknown().transform((value, ctx) => {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((s) => typeof s === 'number' && Number.isInteger(s) && s >= 100 && s <= 599)) {
    ctx.addIssue({ code: 'custom', message: `expected an HTTP status like 200, or a list like [200, 204], got ${describeInput(value)}` });
    return z.NEVER;
  }
  return list as number[];
});

const durationMs = z.unknown().transform((value, ctx) => {
  const ms = typeof value === 'string' ? parseDuration(value) : null;
  if (ms === null || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `expected a request timeout like "5s" or "500ms", got ${describeInput(value)}` });
    return z.NEVER;
  }
  return ms;
});

const smokeTestSchema = z
  .object({
    name: text('a test name'),
    method: z
      .unknown()
      .transform((value, ctx) => {
        const m = typeof value === 'string' ? value.toUpperCase() : '';
        if (!(METHODS as readonly string[]).includes(m)) {
          ctx.addIssue({ code: 'custom', message: `expected one of ${METHODS.join(', ')}, got ${describeInput(value)}` });
          return z.NEVER;
        }
        return m;
      })
      .optional(),
    url: z
      .unknown()
      .transform((value, ctx) => {
        let ok = false;
        try {
          const u = typeof value === 'string' ? new URL(value) : null;
          ok = u !== null && (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password;
        } catch {
          ok = false;
        }
        if (!ok) {
          // Not echoed: a URL may carry a token.
          ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL without user:password@ (the value is not shown: it may hold a secret), or use "path" on the stable host' });
          return z.NEVER;
        }
        return value as string;
      })
      .optional(),
    path: z
      .unknown()
      .transform((value, ctx) => {
        if (typeof value !== 'string' || !value.startsWith('/')) {
          ctx.addIssue({ code: 'custom', message: `expected a path starting with "/" like "/healthz", got ${describeInput(value)}` });
          return z.NEVER;
        }
        return value;
      })
      .optional(),
    headers: headersSchema.optional(),
    status: status.optional(),
    body: text('a text the response body must contain').optional(),
    json: z
      .object({
        path: text('a dot-separated JSON field like "status" or "checks.db"'),
        equals: z.union([z.string(), z.number(), z.boolean(), z.null()], { error: (i) => `expected a string, number, true/false or null, got ${describeInput(i.input)}` }),
      })
      .strict()
      .optional(),
    timeout: durationMs.optional(),
    retries: z
      .unknown()
      .transform((value, ctx) => {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 10) {
          ctx.addIssue({ code: 'custom', message: `expected a whole number from 0 to 10, got ${describeInput(value)}` });
          return z.NEVER;
        }
        return value;
      })
      .optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if ((t.url === undefined) === (t.path === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'expected exactly one of "url" (an absolute URL) or "path" (on the stable Ingress\'s host)' });
    }
  });

export const smokeTestsSchema = z
  .object({
    when: z
      .unknown()
      .transform((value, ctx) => {
        if (value !== 'before-traffic') {
          ctx.addIssue({ code: 'custom', message: `expected "before-traffic", got ${describeInput(value)}` });
          return z.NEVER;
        }
        return value;
      })
      .optional(),
    'after-each-step': z
      .unknown()
      .transform((value, ctx) => {
        if (typeof value !== 'boolean') {
          ctx.addIssue({ code: 'custom', message: `expected true or false, got ${describeInput(value)}` });
          return z.NEVER;
        }
        return value;
      })
      .optional(),
    tests: z.array(smokeTestSchema).min(1, { message: 'expected at least one smoke test' }),
  })
  .strict();

export type SmokeTestsInput = z.output<typeof smokeTestsSchema>;

/** The resolved section, defaults filled in. */
export function resolveSmokeTests(input: SmokeTestsInput | undefined): SmokeTestSettings | undefined {
  if (!input) return undefined;
  return {
    when: 'before-traffic',
    afterEachStep: input['after-each-step'] ?? false,
    tests: input.tests.map((t) => ({
      name: t.name,
      method: t.method ?? 'GET',
      ...(t.url !== undefined && { url: t.url }),
      ...(t.path !== undefined && { path: t.path }),
      headers: t.headers ?? {},
      status: t.status ?? [200],
      ...(t.body !== undefined && { body: t.body }),
      ...(t.json !== undefined && { json: t.json }),
      timeoutMs: t.timeout ?? 5_000,
      retries: t.retries ?? 0,
    })),
  };
}

/** Cross-field problems: smoke tests reach the canary only through the policy's header routing. */
export function checkSmokeTests(smoke: SmokeTestSettings | undefined, headerRouting: { header: string } | undefined, router: string, problems: string[]): void {
  if (!smoke) return;
  if (!headerRouting) {
    problems.push('spec.smokeTests: smoke tests reach the canary through header routing before any weight is raised; set spec.target.headerRouting (e.g. { header: X-Canary, value: always })');
  }
  if (router !== 'ingress-nginx' && router !== 'gateway-api') {
    problems.push(`spec.smokeTests: smoke tests before traffic need a router that can route by header at 0% (ingress-nginx or gateway-api), got spec.traffic.router "${router}"`);
  }
  const seen = new Set<string>();
  smoke.tests.forEach((t, i) => {
    if (seen.has(t.name)) problems.push(`spec.smokeTests.tests[${i}].name: "${t.name}" is used twice`);
    seen.add(t.name);
    // The host of a `path` test is the stable Ingress's; an HTTPRoute's listener (scheme, port) is on a Gateway we do not read.
    if (router === 'gateway-api' && t.path !== undefined) {
      problems.push(`spec.smokeTests.tests[${i}].path: with spec.traffic.router "gateway-api" give the test an absolute "url" (the Gateway's address), not a path on the stable Ingress's host`);
    }
    if (headerRouting && Object.keys(t.headers).some((h) => h.toLowerCase() === headerRouting.header.toLowerCase())) {
      problems.push(`spec.smokeTests.tests[${i}].headers.${headerRouting.header}: this header is the routing header, added to every smoke request from spec.target.headerRouting`);
    }
  });
}
