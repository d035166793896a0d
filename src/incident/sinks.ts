import { CanaryError } from '../errors.js';
import type { SecretSource } from '../policy/policy.js';
import type { IncidentSink } from '../rollout/ports.js';
import { readSecret } from '../secrets.js';
import type { IncidentSinkConfig } from './config.js';
import { DeliveringSink, type Deliverer } from './delivery.js';
import { GitHubIssueDeliverer } from './github-issue.js';
import type { Fetch } from './http.js';
import type { IncidentOptions } from './incident.js';
import { PagerDutyDeliverer } from './pagerduty.js';
import { DEFAULT_RETRY, type RetryOptions } from './retry.js';
import { SlackDeliverer } from './slack.js';
import { WebhookDeliverer } from './webhook.js';

// Builds the sinks a policy names. Secrets are read here, before the rollout starts, so a missing
// token is an input error (exit 2) found at once rather than a silent gap found after a rollback.

export interface SinkFactoryOptions extends IncidentOptions {
  /** Where GITHUB_REPOSITORY and GITHUB_API_URL are read; process.env by default. */
  env?: NodeJS.ProcessEnv;
  fetch?: Fetch;
  retry?: Partial<Omit<RetryOptions, 'totalMs'>>;
  /**
   * The run's cancellation signal (SIGTERM/SIGINT): a run cancelled before delivery delivers in at
   * most 5 s; cancelled during delivery, each sink has at most 3 s left.
   */
  signal?: AbortSignal;
}

const NO_INCIDENT_HINT = 'or run with --no-incident to send none';

function secret(ref: SecretSource, what: string): string {
  try {
    return readSecret(ref, what);
  } catch (err) {
    if (err instanceof CanaryError) throw new CanaryError(err.kind, `${err.message}, ${NO_INCIDENT_HINT}`);
    throw err;
  }
}

export const URL_CREDENTIALS_MESSAGE = 'credentials in the webhook URL are not supported; sign with secret or use headers';

/**
 * A URL read from env or a file, checked now: fetch refuses a URL with user:password@ by throwing
 * an error that quotes it whole, which would put the credential in the log after a rollback.
 * Messages name where the URL came from, never the URL.
 */
function secretUrl(ref: SecretSource, path: string): string {
  const value = secret(ref, path);
  const where = ref.env ? `environment variable ${ref.env}` : `file ${ref.file ?? ''}`;
  checkUrl(value, path, where);
  return value;
}

function checkUrl(value: string, path: string, where: string): void {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new CanaryError('invalid-input', `${path}: ${where} does not hold an http:// or https:// URL (the value is not shown), ${NO_INCIDENT_HINT}`);
  }
  if (url.username || url.password) {
    throw new CanaryError('invalid-input', `${path}: ${where} holds a URL with a user name or password: ${URL_CREDENTIALS_MESSAGE}, ${NO_INCIDENT_HINT}`);
  }
}

function plainUrl(value: string, path: string): string {
  checkUrl(value, path, 'the URL in the policy');
  return value;
}

function deliverer(config: IncidentSinkConfig, path: string, env: NodeJS.ProcessEnv, fetchImpl: Fetch): Deliverer {
  switch (config.type) {
    case 'webhook':
      return new WebhookDeliverer(
        {
          name: config.name,
          url: typeof config.url === 'string' ? plainUrl(config.url, `${path}.url`) : secretUrl(config.url, `${path}.url`),
          ...(config.secret && { secret: secret(config.secret, `${path}.secret`) }),
          headers: config.headers,
        },
        fetchImpl,
      );
    case 'slack':
      return new SlackDeliverer(config.name, secretUrl(config.webhookUrl, `${path}.webhookUrl`), fetchImpl);
    case 'pagerduty':
      return new PagerDutyDeliverer(config.name, secret(config.routingKey, `${path}.routingKey`), config.severity, config.url, fetchImpl);
    case 'github-issue': {
      const repository = config.repository ?? env['GITHUB_REPOSITORY'];
      if (!repository || !/^[\w.-]+\/[\w.-]+$/.test(repository)) {
        throw new CanaryError(
          'invalid-input',
          `${path}.repository: not set and GITHUB_REPOSITORY is ${repository ? `"${repository}", not owner/name` : 'not set'}; expected the repository to open issues in, like "acme/shop", ${NO_INCIDENT_HINT}`,
        );
      }
      return new GitHubIssueDeliverer(
        {
          name: config.name,
          repository,
          labels: config.labels,
          token: secret(config.token, `${path}.token`),
          apiUrl: config.apiUrl ?? env['GITHUB_API_URL'] ?? 'https://api.github.com',
        },
        fetchImpl,
      );
    }
  }
}

/** One IncidentSink per configured sink, in policy order. Throws CanaryError (exit 2) on a missing secret. */
export function createIncidentSinks(configs: readonly IncidentSinkConfig[], opts: SinkFactoryOptions = {}): IncidentSink[] {
  const env = opts.env ?? process.env;
  const fetchImpl = opts.fetch ?? fetch;
  const incident: IncidentOptions = {
    ...(opts.dashboardUrl !== undefined && { dashboardUrl: opts.dashboardUrl }),
    ...(opts.dryRun !== undefined && { dryRun: opts.dryRun }),
  };
  return configs.map(
    (config, i) =>
      new DeliveringSink(deliverer(config, `spec.incidents[${i}]`, env, fetchImpl), {
        timeoutMs: config.timeoutMs,
        retry: { ...DEFAULT_RETRY, ...opts.retry },
        incident,
        ...(opts.signal && { signal: opts.signal }),
      }),
  );
}
