import { hostname, userInfo } from 'node:os';
import { invalidInput } from '../errors.js';
import { createIncidentSinks } from '../incident/sinks.js';
import type { Policy } from '../policy/policy.js';
import { githubReporterFromEnv } from '../report/github-reporter.js';
import { colorEnabled, TerminalReporter } from '../report/terminal-reporter.js';
import { JsonReporter } from '../report/json-reporter.js';
import { fanOut, type Reporter } from '../rollout/events.js';
import type { IncidentSink } from '../rollout/ports.js';

// Flag parsing shared by commands. Each check names the flag and what was expected.

export { parseNamespace, parseOutput, parseTargetName, type OutputFormat } from './parse-flags.js';
import type { OutputFormat } from './parse-flags.js';

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

/**
 * Who started the rollout, for people: the GitHub run when in Actions (its attempt's page from the
 * second attempt on), otherwise user@host. The lease holder is finer still (leaseHolderIdentity).
 */
export function startedBy(env: NodeJS.ProcessEnv = process.env): string {
  const { GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT } = env;
  if (GITHUB_REPOSITORY && GITHUB_RUN_ID) {
    const attempt = GITHUB_RUN_ATTEMPT && GITHUB_RUN_ATTEMPT !== '1' ? `/attempts/${GITHUB_RUN_ATTEMPT}` : '';
    return `${GITHUB_SERVER_URL ?? 'https://github.com'}/${GITHUB_REPOSITORY}/actions/runs/${GITHUB_RUN_ID}${attempt}`;
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

export interface ReporterExtras {
  /** The policy's dashboard template, linked from the GitHub job summary. */
  dashboardUrl?: string;
  /** A dry-run's summary and annotations must not read like a production rollback. */
  dryRun?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Terminal or JSON output, plus the GitHub Actions reporter when GITHUB_ACTIONS=true. */
export function makeReporter(format: OutputFormat, verbose: boolean, extras: ReporterExtras = {}): Reporter {
  let base: Reporter;
  if (format === 'json') {
    base = new JsonReporter(process.stdout);
  } else {
    const tty = Boolean(process.stdout.isTTY);
    base = new TerminalReporter({ out: process.stdout, tty, color: colorEnabled(tty), verbose });
  }
  // With -o json, stdout must stay one JSON document; the runner reads workflow commands on stderr too.
  const github = githubReporterFromEnv(extras.env ?? process.env, format === 'json' ? process.stderr : process.stdout, {
    ...(extras.dashboardUrl !== undefined && { dashboardUrl: extras.dashboardUrl }),
    dryRun: Boolean(extras.dryRun),
  });
  // GitHub first, so a step's ::group:: line comes before the step's own output.
  return github ? fanOut([github, base]) : base;
}

/** The policy's incident sinks, or none with --no-incident. Throws (exit 2) when a secret is missing. */
export function makeIncidentSinks(policy: Policy, opts: { enabled: boolean; dryRun: boolean; signal?: AbortSignal }): IncidentSink[] {
  if (!opts.enabled) return [];
  return createIncidentSinks(policy.incidents, {
    dryRun: opts.dryRun,
    ...(opts.signal && { signal: opts.signal }),
    ...(policy.dashboardUrl !== undefined && { dashboardUrl: policy.dashboardUrl }),
  });
}
