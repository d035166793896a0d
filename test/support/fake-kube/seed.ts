// The world DESIGN.md's names assume for `canary deploy checkout`: stable Deployment, Service and
// Ingress `checkout`, canary Deployment (scaled to 0) and Service `checkout-canary`.

import type { FakeKube, KubeObject } from './server.js';

export interface CheckoutSeed {
  namespace?: string;
  name?: string;
  host?: string;
  image?: string;
  replicas?: number;
  /** Container name in both Deployments (default: the target name). */
  container?: string;
}

export interface SeededCheckout {
  namespace: string;
  name: string;
  canaryName: string;
  host: string;
  image: string;
}

function deployment(namespace: string, name: string, app: string, track: string, image: string, container: string, replicas: number): KubeObject {
  const labels = { app, track };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: container, image, ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }] }] },
      },
    },
  };
}

function service(namespace: string, name: string, app: string, track: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: { app } },
    spec: { selector: { app, track }, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
  };
}

export function seedCheckout(fake: FakeKube, options: CheckoutSeed = {}): SeededCheckout {
  const namespace = options.namespace ?? 'shop';
  const name = options.name ?? 'checkout';
  const canaryName = `${name}-canary`;
  const host = options.host ?? 'shop.example.com';
  const image = options.image ?? `registry.example.com/shop/${name}:1.0.0`;
  const container = options.container ?? name;
  fake.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  fake.put(deployment(namespace, name, name, 'stable', image, container, options.replicas ?? 3));
  fake.put(deployment(namespace, canaryName, name, 'canary', image, container, 0));
  fake.put(service(namespace, name, name, 'stable'));
  fake.put(service(namespace, canaryName, name, 'canary'));
  fake.put({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      ingressClassName: 'nginx',
      tls: [{ hosts: [host], secretName: `${name}-tls` }],
      rules: [
        {
          host,
          http: {
            paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name, port: { number: 80 } } } }],
          },
        },
      ],
    },
  });
  return { namespace, name, canaryName, host, image };
}
