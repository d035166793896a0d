// A kubeconfig for the fake: plain HTTP on loopback with a bearer token. Both kubectl and
// client-node refuse http:// without insecure-skip-tls-verify, so it is set.

import { chmod, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

export interface KubeconfigOptions {
  server: string;
  token: string;
  /** Default namespace of the context; omitted means "default", as kubectl does. */
  namespace?: string;
  contextName?: string;
  userName?: string;
}

export function kubeconfigYaml(options: KubeconfigOptions): string {
  const contextName = options.contextName ?? 'fake-kube';
  const userName = options.userName ?? 'canary-ci';
  const context: Record<string, string> = { cluster: 'fake-kube', user: userName };
  if (options.namespace) context['namespace'] = options.namespace;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    'current-context': contextName,
    clusters: [{ name: 'fake-kube', cluster: { server: options.server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: userName, user: { token: options.token } }],
    contexts: [{ name: contextName, context }],
  });
}

/** Writes the kubeconfig owner-readable only: it holds a token. */
export async function writeKubeconfig(path: string, options: KubeconfigOptions): Promise<string> {
  await writeFile(path, kubeconfigYaml(options), { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}
