// Flag parsing shared by commands. Each check names the flag and what was expected.
// Kept apart from common.ts (reporters, incident sinks) so `validate`, `status` and `rollback`
// can parse their flags without loading what they do not use.

import { hostname, userInfo } from 'node:os';
import { invalidInput } from '../errors.js';

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

// Registry host[:port]/path[:tag][@digest]; strict enough to catch a pasted command or a blank.
const IMAGE = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/i;

export function parseImage(value: string | undefined): string {
  if (!value) throw invalidInput('--image: expected the canary image, like "registry.example.com/shop/checkout:2"');
  if (!IMAGE.test(value)) throw invalidInput(`--image: expected an image reference like "shop/checkout:2", got "${value}"`);
  return value;
}

export function parseTime(value: string, flag: string): number {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) {
    throw invalidInput(`${flag}: expected an RFC 3339 time like "2026-01-15T10:00:00Z", got "${value}"`);
  }
  return ms;
}

/** Who started the rollout: the GitHub run when in Actions, otherwise user@host. */
export function startedBy(env: NodeJS.ProcessEnv = process.env): string {
  const { GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_RUN_ID } = env;
  if (GITHUB_REPOSITORY && GITHUB_RUN_ID) {
    return `${GITHUB_SERVER_URL ?? 'https://github.com'}/${GITHUB_REPOSITORY}/actions/runs/${GITHUB_RUN_ID}`;
  }
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // Containers without a passwd entry have no user name; the host still identifies the run.
  }
  return `${user}@${hostname()}`;
}

export type OnCancel = 'rollback' | 'leave';

export function parseOnCancel(value: string | undefined): OnCancel {
  if (value === undefined || value === 'rollback') return 'rollback';
  if (value === 'leave') return 'leave';
  throw invalidInput(`--on-cancel: expected "rollback" (send the canary to 0%) or "leave" (keep its weight), got "${value}"`);
}
