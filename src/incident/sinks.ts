import { CanaryError } from '../errors.js';
import { resolveHeaders } from '../policy/headers.js';
import type { SecretSource } from '../secrets.js';
import type { IncidentSink } from '../rollout/ports.js';
import { readSecret, registerSecret, registerUrlSecrets } from '../secrets.js';
import type { IncidentSinkConfig } from './config.js';
import { DeliveringSink, type Deliverer } from './delivery.js';
import { GitHubIssueDeliverer } from './github-issue.js';
import { incidentTransport, type HttpTransport } from './http.js';
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
  /** The HTTP stack for sinks without a caFile (the shared axios transport, proxies from the environment, by default). */
  transport?: HttpTransport;
  retry?: Partial<Omit<RetryOptions, 'deadlineMs'>>;
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
 * A URL read from env or a file, checked now: user:password@ in it would be sent as basic auth and
 * could end up quoted in an error, putting the credential in the log after a rollback.
 * Messages name where the URL came from, never the URL.
 */
function secretUrl(ref: SecretSource, path: string): string {
  const value = secret(ref, path);
  const where = ref.env ? `environment variable ${ref.env}` : `file ${ref.file ?? ''}`;
  checkUrl(value, path, where);
  registerUrlSecrets(value);
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

function deliverer(config: IncidentSinkConfig, path: string, env: NodeJS.ProcessEnv, transport: HttpTransport): Deliverer {
  switch (config.type) {
    case 'webhook':
      return new WebhookDeliverer(
        {
          name: config.name,
          url: typeof config.url === 'string' ? plainUrl(config.url, `${path}.url`) : secretUrl(config.url, `${path}.url`),
          ...(config.secret && { secret: secret(config.secret, `${path}.secret`) }),
          headers: resolveHeaders(config.headers, `${path}.headers`),
        },
        transport,
      );
    case 'slack':
      return new SlackDeliverer(config.name, secretUrl(config.webhookUrl, `${path}.webhookUrl`), transport);
    case 'pagerduty':
      return new PagerDutyDeliverer(config.name, secret(config.routingKey, `${path}.routingKey`), config.severity, config.url, transport);
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
        transport,
      );
    }
  }
}

/**
 * Makes the sink's secrets (tokens, keys, the URLs' user info and query values, Slack's URL path)
 * known to every redaction in the process, not only to the sink's own messages.
 */
function registered(d: Deliverer, config: IncidentSinkConfig): Deliverer {
  for (const s of d.secrets) registerSecret(s);
  const urls = [
    config.type === 'webhook' && typeof config.url === 'string' ? config.url : undefined,
    config.type === 'pagerduty' ? config.url : undefined,
    config.type === 'github-issue' ? config.apiUrl : undefined,
  ];
  for (const url of urls) if (url) registerUrlSecrets(url);
  return d;
}

/** One IncidentSink per configured sink, in policy order. Throws CanaryError (exit 2) on a missing secret. */
export function createIncidentSinks(configs: readonly IncidentSinkConfig[], opts: SinkFactoryOptions = {}): IncidentSink[] {
  const env = opts.env ?? process.env;
  const shared = opts.transport ?? incidentTransport();
  // A sink naming its own CA gets a transport that trusts it; the others share one.
  const transportFor = (config: IncidentSinkConfig, path: string) =>
    config.caFile === undefined ? shared : incidentTransport({ caFile: config.caFile, what: `${path}.caFile` });
  const incident: IncidentOptions = {
    ...(opts.dashboardUrl !== undefined && { dashboardUrl: opts.dashboardUrl }),
    ...(opts.dryRun !== undefined && { dryRun: opts.dryRun }),
  };
  return configs.map(
    (config, i) =>
      new DeliveringSink(registered(deliverer(config, `spec.incidents[${i}]`, env, transportFor(config, `spec.incidents[${i}]`)), config), {
        timeoutMs: config.timeoutMs,
        retry: { ...DEFAULT_RETRY, ...opts.retry },
        incident,
        ...(opts.signal && { signal: opts.signal }),
      }),
  );
}
