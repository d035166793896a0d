import { invalidInput } from '../errors.js';
import { createIncidentSinks } from '../incident/sinks.js';
import type { Policy } from '../policy/policy.js';
import { githubReporterFromEnv } from '../report/github-reporter.js';
import { colorEnabled, TerminalReporter } from '../report/terminal-reporter.js';
import { JsonReporter } from '../report/json-reporter.js';
import { fanOut, type Reporter } from '../rollout/events.js';
import type { IncidentSink } from '../rollout/ports.js';
import type { OutputFormat } from './flags.js';

// The flag parsers live in flags.ts; re-exported so commands may keep importing them from here.
export * from './flags.js';

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
