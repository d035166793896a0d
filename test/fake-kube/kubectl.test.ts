// Proves the fake speaks the real protocol: the kubectl binary (Debian's kubernetes-client in CI)
// discovers resources, reads, annotates and is refused by it exactly as by a real API server.

import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { seedCheckout } from '../support/fake-kube/seed.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/server.js';

function findKubectl(): string | undefined {
  const override = process.env['FAKE_KUBE_KUBECTL'];
  if (override) return override;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'kubectl');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

const kubectlPath = findKubectl();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(!kubectlPath)('kubectl against the fake API server (kubectl from PATH; apt-get install kubernetes-client)', () => {
  let fake: FakeKube;
  let home: string;

  const kubectl = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        kubectlPath ?? 'kubectl',
        ['--kubeconfig', fake.kubeconfigPath, '--cache-dir', join(home, 'cache'), '--request-timeout', '20s', ...args],
        { env: { PATH: process.env['PATH'] ?? '', HOME: home }, timeout: 60_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });

  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'fake-kube-kubectl-home-'));
  });
  afterAll(() => {
    rmSync(home, { recursive: true, force: true });
  });
  beforeEach(async () => {
    fake = await startFakeKube();
    seedCheckout(fake, { namespace: 'shop', name: 'checkout' });
  });
  afterEach(async () => {
    await fake.stop();
  });

  it('gets the seeded Ingress as JSON through discovery', async () => {
    const run = await kubectl('-n', 'shop', 'get', 'ingress', 'checkout', '-o', 'json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const ingress = JSON.parse(run.stdout) as {
      apiVersion: string;
      kind: string;
      metadata: { name: string; resourceVersion: string };
      spec: { ingressClassName: string; rules: Array<{ host: string }>; tls: Array<{ secretName: string }> };
    };
    expect(ingress.apiVersion).toBe('networking.k8s.io/v1');
    expect(ingress.kind).toBe('Ingress');
    expect(ingress.metadata.name).toBe('checkout');
    expect(ingress.spec.ingressClassName).toBe('nginx');
    expect(ingress.spec.rules[0]?.host).toBe('shop.example.com');
    expect(ingress.spec.tls[0]?.secretName).toBe('checkout-tls');
    expect(ingress.metadata.resourceVersion).toBe(fake.get('Ingress', 'shop', 'checkout')?.metadata?.resourceVersion);
    // kubectl found the resource through the discovery documents, not a hard-coded path.
    expect(fake.requests.some((r) => r.path === '/apis' || r.path === '/apis/networking.k8s.io/v1')).toBe(true);
  });

  it('annotates the Ingress with a merge patch the server applies', async () => {
    const before = fake.get('Ingress', 'shop', 'checkout');
    const run = await kubectl('-n', 'shop', 'annotate', 'ingress', 'checkout', 'foo=bar');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('ingress.networking.k8s.io/checkout annotated');
    const after = fake.get('Ingress', 'shop', 'checkout');
    expect(after?.metadata?.annotations?.['foo']).toBe('bar');
    expect(Number(after?.metadata?.resourceVersion)).toBeGreaterThan(Number(before?.metadata?.resourceVersion));
    const patch = fake.writes().find((r) => r.method === 'PATCH');
    expect(patch?.path).toBe('/apis/networking.k8s.io/v1/namespaces/shop/ingresses/checkout');
    expect(patch?.contentType).toBe('application/merge-patch+json');
  });

  it('lists deployments as a server-side table', async () => {
    const run = await kubectl('-n', 'shop', 'get', 'deployments');
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE/);
    expect(lines.find((l) => l.startsWith('checkout '))).toMatch(/^checkout\s+3\/3\s+3\s+3\s/);
    expect(lines.find((l) => l.startsWith('checkout-canary '))).toMatch(/^checkout-canary\s+0\/0\s+0\s+0\s/);
  });

  it('reports a stale --resource-version as a Conflict and leaves the object alone', async () => {
    const seen = fake.get('Ingress', 'shop', 'checkout');
    const seenVersion = seen?.metadata?.resourceVersion ?? '';
    // Someone else writes the Ingress after we read it.
    fake.put({ ...seen, metadata: { ...seen?.metadata, annotations: { touched: 'yes' } } });
    const run = await kubectl('-n', 'shop', 'annotate', 'ingress', 'checkout', 'foo=bar', '--resource-version', seenVersion);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('Error from server (Conflict)');
    expect(run.stderr).toContain('the object has been modified');
    expect(fake.get('Ingress', 'shop', 'checkout')?.metadata?.annotations?.['foo']).toBeUndefined();
  });

  it('prints the Forbidden message for a patch outside the allow-list, and can-i agrees', async () => {
    fake.deny({ verb: 'patch', group: 'networking.k8s.io', resource: 'ingresses', namespace: 'shop' });
    const run = await kubectl('-n', 'shop', 'annotate', 'ingress', 'checkout', 'foo=bar');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(
      'Error from server (Forbidden): ingresses.networking.k8s.io "checkout" is forbidden: User ' +
        '"system:serviceaccount:ci:canary" cannot patch resource "ingresses" in API group "networking.k8s.io" ' +
        'in the namespace "shop"',
    );
    const canPatch = await kubectl('-n', 'shop', 'auth', 'can-i', 'patch', 'ingresses.networking.k8s.io');
    expect(canPatch.stdout.trim()).toBe('no');
    const canGet = await kubectl('-n', 'shop', 'auth', 'can-i', 'get', 'ingresses.networking.k8s.io');
    expect(canGet.stdout.trim()).toBe('yes');
  });

  it('rejects a canary weight that is not an integer from 0 to 100 as Invalid', async () => {
    const run = await kubectl('-n', 'shop', 'annotate', 'ingress', 'checkout', 'nginx.ingress.kubernetes.io/canary-weight=150');
    expect(run.code).not.toBe(0);
    // kubectl renders a 422 with causes as "The <Kind> ... is invalid".
    expect(run.stderr).toContain('The Ingress "checkout" is invalid');
    expect(run.stderr).toContain('metadata.annotations[nginx.ingress.kubernetes.io/canary-weight]: Invalid value: "150"');
    expect(fake.get('Ingress', 'shop', 'checkout')?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBeUndefined();
  });

  it('says NotFound for an Ingress that does not exist', async () => {
    const run = await kubectl('-n', 'shop', 'get', 'ingress', 'nope');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('Error from server (NotFound): ingresses.networking.k8s.io "nope" not found');
  });
});
