import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { CanaryError } from '../../src/errors.js';
import { merge, parsePolicy } from '../../src/policy/loader.js';
import type { Policy } from '../../src/policy/policy.js';

// Policies for tests, built exactly as `--policy` builds them: a document merged over the shipped
// default. Tests of threshold behaviour name policies/threshold.yaml so they do not follow
// changes to the default's judges.

const read = (name: string) => parse(readFileSync(new URL(`../../policies/${name}`, import.meta.url), 'utf8')) as unknown;

export function defaultPolicy(overrides = ''): Policy {
  return overrides ? parsePolicy(overrides, 'test.yaml', read('default.yaml')) : parsePolicy(JSON.stringify(read('default.yaml')), 'policies/default.yaml');
}

export function thresholdPolicy(overrides = ''): Policy {
  const base = merge(read('default.yaml'), read('threshold.yaml'));
  return parsePolicy(overrides || 'apiVersion: canary/v1\nkind: RolloutPolicy\nspec: {}\n', overrides ? 'test.yaml' : 'policies/threshold.yaml', base);
}

/** The details of the refusal of a policy that must not load (each names a field and what was expected). */
export function policyRefusals(yaml: string): string[] {
  try {
    thresholdPolicy(yaml);
  } catch (err) {
    if (err instanceof CanaryError) return [...err.details];
    throw err;
  }
  throw new Error('expected the policy to be refused');
}
