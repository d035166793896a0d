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

/** --timeout 30s, 90s, 2m, 500ms: the stop deadline of `canary rollback`. */
export function parseStopTimeout(value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(value.trim());
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000) : NaN;
  if (!(ms >= 1000) || !Number.isFinite(ms) || ms > 3_600_000) {
    throw invalidInput(`--timeout: expected how long to keep driving the canary to 0% before giving up, from 1s to 60m, like "30s" or "2m", got "${value}"`);
  }
  return ms;
}
