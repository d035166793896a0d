// Builds the smoke-test adapter for a live deploy: the stable host read from the stable Ingress
// (only when a test names a `path`), every test's header values read and registered as secrets
// before the first write.

import { NetworkingV1Api, type KubeConfig } from '@kubernetes/client-node';
import { SmokeClient, stableBaseUrl } from '../http/smoke-client.js';
import { withKubeRetry, type KubeRetryOptions } from '../k8s/api-errors.js';
import { serverOf } from '../k8s/connection.js';
import { resolveHeaders } from '../policy/headers.js';
import type { Policy, TargetNames } from '../policy/policy.js';
import { invalidInput } from '../errors.js';

export async function smokeTesterFor(policy: Policy, kc: KubeConfig, namespace: string, names: TargetNames, retry: KubeRetryOptions): Promise<SmokeClient | undefined> {
  const smoke = policy.smokeTests;
  const headerRouting = names.headerRouting;
  if (!smoke || !headerRouting) return undefined;
  for (const t of smoke.tests) resolveHeaders(t.headers, `spec.smokeTests.${t.name}.headers`);
  let baseUrl: string | undefined;
  if (smoke.tests.some((t) => t.path !== undefined)) {
    const api = kc.makeApiClient(NetworkingV1Api);
    const ing = await withKubeRetry(
      `reading the stable Ingress ${namespace}/${names.stableIngress}`,
      (o) => api.readNamespacedIngress({ name: names.stableIngress, namespace }, o),
      { ...retry, server: serverOf(kc) },
    );
    baseUrl = stableBaseUrl(ing as never);
    if (!baseUrl) throw invalidInput(`spec.smokeTests: a test names a "path", but the stable Ingress ${namespace}/${names.stableIngress} has no host in its rules; give those tests a "url"`);
  }
  return new SmokeClient({ ...(baseUrl !== undefined && { baseUrl }), headerRouting });
}
