// Which cluster, as whom: the kubeconfig search kubectl users expect (--kubeconfig, KUBECONFIG,
// ~/.kube/config, then the pod's service account), with errors that say where we looked.
// Tokens stay inside the KubeConfig object, and every credential in it is registered with the
// redaction boundary as soon as the kubeconfig is read: an API front-end that echoes our request
// (and token) back cannot put it in a message.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig, type Cluster, type Context, type User } from '@kubernetes/client-node';
import { CanaryError } from '../errors.js';
import { redactUrl, registerBasicAuth, registerBearer, registerSecret, registerUrlSecrets } from '../secrets.js';

export interface KubeConnection {
  kc: KubeConfig;
  context: string;
  server: string;
  user: string;
  defaultNamespace: string;
}

export interface ConnectOptions {
  kubeconfig?: string;
  context?: string;
  env?: NodeJS.ProcessEnv;
  /** Where a pod's service account files live (tests point this elsewhere). */
  serviceAccountDir?: string;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Why a kubeconfig could not be parsed, without echoing its content (which may hold a token). */
function parseFailure(err: unknown): string {
  if (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'YAMLException') {
    const { reason, mark } = err as { reason?: string; mark?: { line?: number } };
    return `not valid YAML: ${reason ?? 'parse error'}${mark?.line !== undefined ? ` (line ${mark.line + 1})` : ''}`;
  }
  if (err instanceof TypeError) return 'not a kubeconfig (no clusters, users and contexts)';
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
}

function loadFile(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  if (!Array.isArray(kc.clusters) || !Array.isArray(kc.contexts)) throw new TypeError('not a kubeconfig');
  return kc;
}

/** kubectl's merge rule for KUBECONFIG lists: the first file to define a name (or current-context) wins. */
function merge(configs: readonly KubeConfig[]): KubeConfig {
  const firstByName = <T extends { name: string }>(lists: readonly (readonly T[] | undefined)[]): T[] => {
    const seen = new Map<string, T>();
    for (const list of lists) for (const item of list ?? []) if (!seen.has(item.name)) seen.set(item.name, item);
    return [...seen.values()];
  };
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: firstByName<Cluster>(configs.map((c) => c.clusters)),
    users: firstByName<User>(configs.map((c) => c.users)),
    contexts: firstByName<Context>(configs.map((c) => c.contexts)),
    currentContext: configs.find((c) => c.currentContext)?.currentContext ?? '',
  });
  return kc;
}

function inCluster(env: NodeJS.ProcessEnv, dir: string): KubeConfig {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
  const tokenFile = join(dir, 'token');
  const namespaceFile = join(dir, 'namespace');
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined;
  const server = `${['80', '8080', '8001'].includes(port) ? 'http' : 'https'}://${host?.includes(':') ? `[${host}]` : host}:${port}`;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'in-cluster', server, caFile: join(dir, 'ca.crt'), skipTLSVerify: false }],
    users: [{ name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile } } }],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'service-account', ...(namespace ? { namespace } : {}) }],
    currentContext: 'in-cluster',
  });
  return kc;
}

function notFoundError(looked: readonly string[]): CanaryError {
  return new CanaryError(
    'invalid-input',
    'no usable kubeconfig: pass --kubeconfig FILE, set KUBECONFIG, or run inside a pod with a service account',
    looked,
  );
}

/** Finds the kubeconfig, in kubectl's order, stopping at the first source that exists. */
function locate(opts: ConnectOptions): { kc: KubeConfig; source: string } {
  const env = opts.env ?? process.env;
  const looked: string[] = [];
  const broken = (source: string, why: string): CanaryError =>
    new CanaryError('invalid-input', `the kubeconfig ${source} cannot be used: ${why}`, [...looked, `${source}: ${why}`]);

  if (opts.kubeconfig) {
    const source = `--kubeconfig ${opts.kubeconfig}`;
    if (!existsSync(opts.kubeconfig)) throw notFoundError([`${source}: no such file`]);
    try {
      return { kc: loadFile(opts.kubeconfig), source };
    } catch (err) {
      throw broken(source, parseFailure(err));
    }
  }

  const listed = (env['KUBECONFIG'] ?? '').split(delimiter).filter((p) => p.trim() !== '');
  if (listed.length > 0) {
    const present = listed.filter((p) => existsSync(p));
    for (const p of listed) if (!present.includes(p)) looked.push(`KUBECONFIG entry ${p}: no such file`);
    if (present.length > 0) {
      const configs: KubeConfig[] = [];
      for (const p of present) {
        try {
          configs.push(loadFile(p));
        } catch (err) {
          throw broken(`${p} (from KUBECONFIG)`, parseFailure(err));
        }
      }
      return { kc: configs.length === 1 && configs[0] ? configs[0] : merge(configs), source: `KUBECONFIG (${present.join(delimiter)})` };
    }
  } else {
    looked.push('KUBECONFIG: not set');
  }

  const home = env['HOME'] ?? homedir();
  const homeConfig = join(home, '.kube', 'config');
  if (existsSync(homeConfig)) {
    try {
      return { kc: loadFile(homeConfig), source: homeConfig };
    } catch (err) {
      throw broken(homeConfig, parseFailure(err));
    }
  }
  looked.push(`${homeConfig}: no such file`);

  const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (!env['KUBERNETES_SERVICE_HOST']) {
    looked.push('in-cluster service account: KUBERNETES_SERVICE_HOST is not set (not running in a pod)');
  } else if (!existsSync(join(dir, 'token'))) {
    looked.push(`in-cluster service account: ${join(dir, 'token')} does not exist (is automountServiceAccountToken off?)`);
  } else {
    return { kc: inCluster(env, dir), source: 'in-cluster service account' };
  }
  throw notFoundError(looked);
}

function readIfPresent(path: unknown): string | undefined {
  if (typeof path !== 'string' || !path) return undefined;
  try {
    return readFileSync(path, 'utf8').replace(/[\r\n]+$/, '');
  } catch {
    return undefined;
  }
}

/**
 * Registers every credential a kubeconfig holds, for every user (a context switch must not open a
 * gap): tokens (inline, token files, auth-provider tokens), basic-auth passwords in their wire
 * form, client keys, and the user info and query values of every server URL.
 */
export function registerKubeconfigSecrets(kc: KubeConfig): void {
  for (const cluster of kc.clusters ?? []) {
    registerUrlSecrets(cluster.server);
    registerUrlSecrets(cluster.proxyUrl);
  }
  for (const user of kc.users ?? []) {
    if (user.token) registerBearer(user.token);
    if (user.password) registerBasicAuth(user.username ?? '', user.password);
    registerSecret(user.keyData);
    if (user.keyData) registerSecret(Buffer.from(user.keyData, 'base64').toString('utf8').trim());
    registerSecret(readIfPresent(user.keyFile));
    const config = (user.authProvider as { config?: Record<string, unknown> } | undefined)?.config ?? {};
    for (const [key, value] of Object.entries(config)) {
      if (typeof value !== 'string' || !value) continue;
      if (/token|secret|password/i.test(key)) registerBearer(value);
      if (key === 'tokenFile') {
        const token = readIfPresent(value);
        if (token) registerBearer(token);
      }
    }
    for (const env of user.exec?.env ?? []) if (env.value && env.value.length >= 8) registerSecret(env.value);
  }
}

/** Connects to nothing yet: resolves which server, context, user and namespace calls will use. */
export function connect(opts: ConnectOptions = {}): KubeConnection {
  const { kc, source } = locate(opts);
  registerKubeconfigSecrets(kc);
  const contexts = kc.getContexts();
  const wanted = opts.context ?? kc.getCurrentContext();
  const available = contexts.map((c) => c.name);
  if (!wanted) {
    throw new CanaryError('invalid-input', `the kubeconfig ${source} has no current-context: pass --context NAME`, [
      available.length ? `contexts available: ${available.join(', ')}` : 'it defines no contexts',
    ]);
  }
  const context = kc.getContextObject(wanted);
  if (!context) {
    throw new CanaryError(
      'invalid-input',
      `${opts.context ? '--context' : 'current-context'} "${wanted}" is not defined in the kubeconfig ${source}`,
      [available.length ? `contexts available: ${available.join(', ')}` : 'it defines no contexts'],
    );
  }
  kc.setCurrentContext(wanted);
  const cluster = kc.getCluster(context.cluster);
  if (!cluster) {
    throw new CanaryError('invalid-input', `context "${wanted}" names cluster "${context.cluster}", which the kubeconfig ${source} does not define`);
  }
  if (context.user && !kc.getUser(context.user)) {
    throw new CanaryError('invalid-input', `context "${wanted}" names user "${context.user}", which the kubeconfig ${source} does not define`);
  }
  try {
    new URL(cluster.server);
  } catch {
    // Not quoted: a token pasted into server: would land in the CI log.
    throw new CanaryError('invalid-input', `cluster "${cluster.name}" in the kubeconfig ${source}: expected server: to be a URL like https://api.example.com:6443 (the value is not shown)`);
  }
  return {
    kc,
    context: wanted,
    server: cluster.server,
    user: context.user ?? '',
    defaultNamespace: context.namespace || 'default',
  };
}

/** The API server's URL, for messages. */
export function serverOf(kc: KubeConfig): string {
  const server = kc.getCurrentCluster()?.server;
  if (!server) return 'the configured server';
  // URL parsing adds a "/" to a bare origin; show the server as the kubeconfig spells it.
  const shown = redactUrl(server);
  return server.endsWith('/') ? shown : shown.replace(/\/$/, '');
}
