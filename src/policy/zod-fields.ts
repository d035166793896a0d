import * as z from 'zod';
import { describeInput } from './units.js';

// Field parsers shared by the policy's schemas: each error names what was expected and what came.

/** A non-blank string; `what` says what it should be ("a header name"). */
export const text = (what: string) =>
  z.unknown().transform((value, ctx) => {
    if (typeof value !== 'string' || value.trim() === '') {
      ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${describeInput(value)}` });
      return z.NEVER;
    }
    return value;
  });
