import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { messageOf } from '../../src/errors.js';
import { apiStatus, describeKubeError, isNotFound, KubeApiError, withKubeRetry } from '../../src/k8s/api-errors.js';
import { connect } from '../../src/k8s/connection.js';
import { clearRegisteredSecrets } from '../../src/secrets.js';
import { kubeconfigYaml } from '../support/fake-kube/kubeconfig.js';
import { startEchoServer, type EchoServer } from './support/echo-server.js';
import { findLeaks, SECRETS, writeProbeFile } from './support/probe.js';

// Class 5 of issue 17 at the unit level: a 404 from an API front-end that echoes the request is,
// in client-node, an ApiException whose message holds the response headers and body (our token in
// it). What reaches callers is our KubeApiError: status code, reason, the server's message
// redacted, and nothing else.

let echo: EchoServer;
beforeAll(async () => {
  echo = await startEchoServer();
});
afterAll(async () => {
  await echo?.close();
});
afterEach(() => clearRegisteredSecrets());

function core(status: string): CoreV1Api {
  const path = writeProbeFile(`unit-kubeconfig-${status}`, kubeconfigYaml({ server: `${echo.url}/s${status}`, token: SECRETS.kubeToken }));
  return connect({ kubeconfig: path }).kc.makeApiClient(CoreV1Api);
}

describe('Kubernetes client errors become our errors', () => {
  it('a 404 that echoes the request reaches the caller as KubeApiError: still a 404, no token, no headers', async () => {
    const api = core('404k');
    const err = await withKubeRetry('reading the record', (o) => api.readNamespacedConfigMap({ name: 'x', namespace: 'shop' }, o), { attempts: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(isNotFound(err)).toBe(true);
    expect(apiStatus(err).reason).toBe('NotFound');
    const texts = { message: messageOf(err), describe: describeKubeError(err), body: (err as KubeApiError).body, json: JSON.stringify(err) };
    expect(findLeaks(texts, ['kubeToken'])).toEqual([]);
    expect(texts.message).not.toMatch(/HTTP-Code|Headers:|Body:/);
    // The echo did carry the token: the redaction is what kept it out.
    expect(echo.seen.some((r) => r.includes(`Bearer ${SECRETS.kubeToken}`))).toBe(true);
  });

  it('a 500 that keeps failing and a 403 become CanaryErrors without the token', async () => {
    for (const status of ['500k', '403k', '422t']) {
      const api = core(status);
      const err = await withKubeRetry('reading the record', (o) => api.readNamespacedConfigMap({ name: 'x', namespace: 'shop' }, o), { attempts: 1 }).catch((e: unknown) => e);
      const cause = (err as Error).cause;
      expect(findLeaks({ message: messageOf(err), cause: cause instanceof Error ? `${cause.message} ${JSON.stringify(cause)}` : String(cause) }, ['kubeToken'])).toEqual([]);
    }
  });
});
