// Canary and stable Deployments against the fake API server and its deployment controller.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { connect } from '../../src/k8s/connection.js';
import { DeploymentWorkloads } from '../../src/k8s/deployment-workloads.js';
import { targetNames, type TargetNames } from '../../src/policy/policy.js';
import { systemClock } from '../../src/rollout/clock.js';
import type { Clock } from '../../src/rollout/ports.js';
import { seedCheckout } from '../support/fake-kube/seed.js';
import { startFakeKube, type FakeKube, type KubeObject } from '../support/fake-kube/server.js';

let fake: FakeKube;

beforeEach(async () => {
  fake = await startFakeKube({ controllerDelayMs: 20 });
  seedCheckout(fake, { image: 'shop/checkout:1', replicas: 3 });
});
afterEach(async () => {
  await fake.stop();
});

function workloads(overrides: Partial<TargetNames> = {}, extra: { clock?: Clock; readyTimeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {}): DeploymentWorkloads {
  const { kc } = connect({ kubeconfig: fake.kubeconfigPath });
  return new DeploymentWorkloads({
    kc,
    namespace: 'shop',
    names: targetNames('checkout', overrides),
    clock: extra.clock ?? systemClock,
    pollMs: extra.pollMs ?? 10,
    readyTimeoutMs: extra.readyTimeoutMs ?? 30_000,
    retry: { sleep: async () => undefined },
    ...(extra.signal && { signal: extra.signal }),
  });
}

type DeploymentSpec = { replicas?: number; template: { spec: { containers: { name: string; image: string }[] } } };
const spec = (name: string): DeploymentSpec => fake.get('Deployment', 'shop', name)?.['spec'] as DeploymentSpec;

/** A clock whose sleeps advance virtual time but still yield to the real event loop, so the fake controller runs. */
function steppingClock(): Clock {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms;
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
  };
}

describe('DeploymentWorkloads', () => {
  it('reads the stable image of the only container', async () => {
    expect(await workloads().stableImage()).toBe('shop/checkout:1');
  });

  it('needs spec.target.container when there are several containers', async () => {
    const d = fake.get('Deployment', 'shop', 'checkout') as KubeObject;
    (d['spec'] as DeploymentSpec).template.spec.containers.push({ name: 'envoy', image: 'envoy:1' });
    fake.put(d);
    const err = await workloads().stableImage().catch((e: unknown) => e);
    expect((err as CanaryError).kind).toBe('invalid-input');
    expect((err as CanaryError).message).toContain('checkout, envoy');
    expect((err as CanaryError).message).toContain('spec.target.container');
    expect(await workloads({ container: 'envoy' }).stableImage()).toBe('envoy:1');
  });

  it('starts the canary with one patch (image and replicas like stable) and waits until it is ready', async () => {
    fake.clearRequests();
    await workloads().startCanary('shop/checkout:2');

    const patches = fake.writes();
    expect(patches).toHaveLength(1);
    expect(patches[0]?.path).toBe('/apis/apps/v1/namespaces/shop/deployments/checkout-canary');
    expect(patches[0]?.contentType).toBe('application/strategic-merge-patch+json');
    expect(spec('checkout-canary').replicas).toBe(3);
    expect(spec('checkout-canary').template.spec.containers[0]?.image).toBe('shop/checkout:2');
    const status = fake.get('Deployment', 'shop', 'checkout-canary')?.['status'] as { availableReplicas?: number };
    expect(status.availableReplicas).toBe(3);
    // The stable Deployment is not written while the canary starts.
    expect(spec('checkout').template.spec.containers[0]?.image).toBe('shop/checkout:1');
  });

  it('uses canaryReplicas from the policy when set', async () => {
    await workloads({ canaryReplicas: 1 }).startCanary('shop/checkout:2');
    expect(spec('checkout-canary').replicas).toBe(1);
  });

  it('ends with the reason when the canary exceeds its progress deadline', async () => {
    fake.setDeploymentBehavior('shop', 'checkout-canary', 'fail');
    const err = await workloads().startCanary('shop/checkout:broken').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).message).toMatch(/canary Deployment shop\/checkout-canary failed to roll out: ProgressDeadlineExceeded: ReplicaSet "checkout-canary-\w+" has timed out progressing/);
  });

  it('says what it saw when the canary is not ready in time', async () => {
    fake.setDeploymentBehavior('shop', 'checkout-canary', 'unready');
    const err = await workloads({}, { clock: steppingClock(), readyTimeoutMs: 10 * 60_000, pollMs: 30_000 }).startCanary('shop/checkout:2').catch((e: unknown) => e);
    expect((err as CanaryError).message).toBe(
      'the canary Deployment shop/checkout-canary is not ready: 0 of 3 replicas available (3 updated, 0 ready) after 10m',
    );
  });

  it('promotes stable to the new image and waits until fully available', async () => {
    await workloads().promoteStable('shop/checkout:2');
    expect(spec('checkout').template.spec.containers[0]?.image).toBe('shop/checkout:2');
    expect(await workloads().verifyStable()).toEqual({ available: true, message: 'Deployment shop/checkout: 3 of 3 replicas available (3 updated, 3 ready)' });
  });

  it('scales the canary down to 0, and only writes when it is not already there', async () => {
    await workloads().startCanary('shop/checkout:2');
    await workloads().scaleDownCanary();
    expect(spec('checkout-canary').replicas).toBe(0);
    fake.clearRequests();
    await workloads().scaleDownCanary();
    expect(fake.writes()).toEqual([]);
  });

  it('reports stable unavailable when replicas are missing or the controller has not caught up', async () => {
    fake.setDeploymentBehavior('shop', 'checkout', 'unready');
    await fake.settled();
    const unready = await workloads().verifyStable();
    expect(unready.available).toBe(false);
    expect(unready.message).toContain('0 of 3 replicas available');

    fake.setDeploymentBehavior('shop', 'checkout', 'frozen');
    const d = fake.get('Deployment', 'shop', 'checkout') as KubeObject;
    (d['spec'] as DeploymentSpec).replicas = 4;
    fake.put(d);
    const lagging = await workloads().verifyStable();
    expect(lagging.available).toBe(false);
    expect(lagging.message).toContain('has not yet observed');
  });

  it('names the field to set when a Deployment does not exist', async () => {
    const err = await workloads({ canaryDeployment: 'checkout-next' }).startCanary('x:1').catch((e: unknown) => e);
    expect((err as CanaryError).message).toBe(
      "the canary Deployment shop/checkout-next does not exist; name the right one in the policy's spec.target.canaryDeployment",
    );
  });

  it('says "not found" rather than "scaled to 0" when the canary Deployment does not exist', async () => {
    expect(await workloads({ canaryDeployment: 'checkout-gone' }).scaleDownCanary()).toBe('not-found');
    await workloads().startCanary('shop/checkout:2');
    expect(await workloads().scaleDownCanary()).toBe('scaled-to-zero');
    expect(await workloads().scaleDownCanary()).toBe('already-zero');
  });

  it('stops waiting for a canary that never becomes ready when the deploy is cancelled', async () => {
    fake.setDeploymentBehavior('shop', 'checkout-canary', 'unready');
    const controller = new AbortController();
    fake.clearRequests();
    // The ready timeout is far away: only the cancellation can end this wait.
    const waiting = workloads({}, { readyTimeoutMs: 10 * 60_000, pollMs: 50, signal: controller.signal }).startCanary('shop/checkout:2').catch((e: unknown) => e);
    const deadline = Date.now() + 10_000;
    while (fake.requests.filter((r) => r.method === 'GET').length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort();
    const outcome = await Promise.race([waiting, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 5000))]);
    expect(outcome).toBeInstanceOf(CanaryError);
    expect((outcome as CanaryError).message).toBe(
      'the wait for the canary Deployment shop/checkout-canary to become ready was cancelled; it keeps rolling out on its own',
    );
  });

  it('a lost lease ends the wait with its own reason', async () => {
    fake.setDeploymentBehavior('shop', 'checkout-canary', 'unready');
    const controller = new AbortController();
    controller.abort(new CanaryError('unreachable', 'lost the rollout lease'));
    const err = await workloads({}, { signal: controller.signal }).startCanary('shop/checkout:2').catch((e: unknown) => e);
    expect((err as CanaryError).kind).toBe('unreachable');
    expect((err as CanaryError).message).toBe('lost the rollout lease');
  });
});
