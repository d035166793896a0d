import { invalidInput } from '../errors.js';

// Flag parsing that every command needs before its first request; kept apart from common.ts so
// `canary rollback` can send its 0% write before the reporters and incident sinks are loaded.

export type OutputFormat = 'text' | 'json';

export function parseOutput(value: string | undefined): OutputFormat {
  if (value === undefined || value === 'text') return 'text';
  if (value === 'json') return 'json';
  throw invalidInput(`--output: expected "text" or "json", got "${value}"`);
}

export function parseTargetName(value: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value)) {
    throw invalidInput(`target name: expected a Kubernetes name like "checkout" (lower-case letters, digits and "-"), got "${value}"`);
  }
  return value;
}

export function parseNamespace(value: string | undefined): string {
  const ns = value ?? 'default';
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns)) {
    throw invalidInput(`--namespace: expected a Kubernetes namespace name, got "${ns}"`);
  }
  return ns;
}
