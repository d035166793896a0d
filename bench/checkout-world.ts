// The world `canary deploy checkout` expects, written into a real API server as cluster admin:
// namespace shop, Deployments and Services checkout and checkout-canary, Ingress checkout, and
// our canary Ingress at 25%. Nothing runs the Deployments, so their status is written here.

import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, ROLLOUT_ID_ANNOTATION, TARGET_LABEL } from '../src/k8s/labels.js';
import type { KubeObject, RealKube } from './real-kube.js';

export const NS = 'shop';
export const TARGET = 'checkout';
export const CANARY = `${TARGET}-canary`;
export const WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';

const deployment = (name: string, track: string, replicas: number) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: NS, labels: { app: TARGET, track } },
  spec: {
    replicas,
    selector: { matchLabels: { app: TARGET, track } },
    template: {
      metadata: { labels: { app: TARGET, track } },
      spec: { containers: [{ name: TARGET, image: 'registry.example.com/shop/checkout:1.0.0' }] },
    },
  },
});

const service = (name: string, track: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: NS },
  spec: { selector: { app: TARGET, track }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
});

const ingress = (name: string, service: string, extra: { labels?: Record<string, string>; annotations?: Record<string, string> }) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'Ingress',
  metadata: { name, namespace: NS, ...extra },
  spec: {
    ingressClassName: 'nginx',
    rules: [{ host: 'shop.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: service, port: { number: 80 } } } }] } }],
  },
});

/** Plays the Deployment controller: every replica of the current generation is available. */
async function markAvailable(kube: RealKube, name: string): Promise<void> {
  const path = `/apis/apps/v1/namespaces/${NS}/deployments/${name}`;
  const d = (await kube.call('GET', path)) as KubeObject & { spec: { replicas: number } };
  const n = d.spec.replicas;
  await kube.call(
    'PATCH',
    `${path}/status`,
    {
      status: {
        observedGeneration: d.metadata?.generation,
        replicas: n,
        updatedReplicas: n,
        readyReplicas: n,
        availableReplicas: n,
        conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'bench' }],
      },
    },
    'application/merge-patch+json',
  );
}

export async function seed(kube: RealKube): Promise<void> {
  await kube.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await kube.call('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, deployment(TARGET, 'stable', 3));
  await kube.call('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, deployment(CANARY, 'canary', 1));
  await markAvailable(kube, TARGET);
  await markAvailable(kube, CANARY);
  await kube.call('POST', `/api/v1/namespaces/${NS}/services`, service(TARGET, 'stable'));
  await kube.call('POST', `/api/v1/namespaces/${NS}/services`, service(CANARY, 'canary'));
  await kube.call('POST', `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`, ingress(TARGET, TARGET, {}));
  await kube.call(
    'POST',
    `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`,
    ingress(CANARY, CANARY, {
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [TARGET_LABEL]: TARGET },
      annotations: { 'nginx.ingress.kubernetes.io/canary': 'true', [WEIGHT]: '25', [ROLLOUT_ID_ANNOTATION]: 'checkout-bench' },
    }),
  );
}

/** Puts the canary back at 25% with one replica, as a running rollout would have it. */
export async function armCanary(kube: RealKube): Promise<string> {
  await kube.call('PATCH', `/apis/apps/v1/namespaces/${NS}/deployments/${CANARY}`, { spec: { replicas: 1 } }, 'application/merge-patch+json');
  await markAvailable(kube, CANARY);
  const ing = (await kube.call(
    'PATCH',
    `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/${CANARY}`,
    { metadata: { annotations: { [WEIGHT]: '25' } } },
    'application/merge-patch+json',
  )) as KubeObject;
  return ing.metadata?.resourceVersion ?? '0';
}
