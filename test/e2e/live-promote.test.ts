import { describe, expect, it } from 'vitest';
import type { StatusView } from '../../src/report/status-view.js';
import {
  CANARY_ANNOTATION,
  CANARY_INGRESS,
  LEASE,
  NAMESPACE,
  NEW_IMAGE,
  OWNED,
  RECORD_CONFIGMAP,
  RUN_URL,
  SHORT_STEPS,
  useLiveWorld,
  TARGET,
  waitFor,
  WEIGHT_ANNOTATION,
} from '../support/live-harness.js';

// A live rollout end to end: the built CLI against the fake Kubernetes API over loopback HTTP,
// judged by a fake Prometheus; assertions are on what the cluster holds afterwards and on what
// the user reads.

const world = useLiveWorld();

/** The canary weights the CLI asked for, in order, as the API server received them. */
function weightPatches(): string[] {
  return world.fake.requests
    .filter((r) => r.method === 'PATCH' && r.path === `/apis/networking.k8s.io/v1/namespaces/${NAMESPACE}/ingresses/${CANARY_INGRESS}` && r.status === 200)
    .map((r) => {
      // A raise is a JSON Patch fenced by test ops; an Ingress made before the fence gets a merge patch.
      if (Array.isArray(r.body)) {
        const pointer = `/metadata/annotations/${WEIGHT_ANNOTATION.replace(/~/g, '~0').replace(/\//g, '~1')}`;
        const op = (r.body as { op?: string; path?: string; value?: unknown }[]).find((o) => (o.op === 'replace' || o.op === 'add') && o.path === pointer);
        return typeof op?.value === 'string' ? op.value : '?';
      }
      const body = r.body as { metadata?: { annotations?: Record<string, string> } } | undefined;
      return body?.metadata?.annotations?.[WEIGHT_ANNOTATION] ?? '?';
    });
}

describe('a healthy canary is promoted through the cluster', () => {
  it('shifts traffic 10 → 25 → 50 → 100 → 0, promotes the image, and leaves a record that status reads', async () => {
    const stableIngressBefore = JSON.stringify(world.fake.get('Ingress', NAMESPACE, TARGET));

    const run = await world.deploy().done;
    expect(run.stderr).toBe('');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    // Checks run on a fixed schedule and one that overruns its slot skips the next (a loaded
    // machine does that), so how many ran is observed, not assumed: at least one per step.
    const promoted = /PROMOTED: all (\d+) checks passed/.exec(run.stdout);
    expect(promoted, run.stdout).not.toBeNull();
    const ran = Number(promoted?.[1]);
    expect(run.stdout).toContain('traffic: all traffic on stable, which now runs the new image');

    // Traffic: every step, then 100% while stable is updated, then back to 0%.
    expect(weightPatches()).toEqual(['10', '25', '50', '100', '0']);

    // The canary Ingress is ours, at 0%, a copy of the stable routes pointing at the canary Service.
    const canary = world.canaryIngress();
    expect(canary?.metadata?.labels).toMatchObject(OWNED);
    expect(canary?.metadata?.annotations).toMatchObject({ [CANARY_ANNOTATION]: 'true', [WEIGHT_ANNOTATION]: '0' });
    const stable = world.fake.get('Ingress', NAMESPACE, TARGET);
    const spec = canary?.['spec'] as { ingressClassName?: string; tls?: unknown; rules?: { host?: string; http?: { paths?: { path?: string; backend?: { service?: { name?: string; port?: unknown } } }[] } }[] };
    const stableSpec = stable?.['spec'] as { tls?: unknown };
    expect(spec.ingressClassName).toBe('nginx');
    expect(spec.tls).toEqual(stableSpec.tls);
    expect(spec.rules).toEqual([
      { host: 'shop.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'checkout-canary', port: { number: 80 } } } }] } },
    ]);
    // The stable Ingress was read, never written.
    expect(JSON.stringify(stable)).toBe(stableIngressBefore);

    // Workloads: stable runs the new image on every replica; the canary is scaled away.
    const stableDeployment = world.fake.get('Deployment', NAMESPACE, TARGET) as { spec?: { template?: { spec?: { containers?: { image?: string }[] } } }; status?: { availableReplicas?: number } };
    expect(stableDeployment.spec?.template?.spec?.containers?.[0]?.image).toBe(NEW_IMAGE);
    expect(stableDeployment.status?.availableReplicas).toBe(3);
    const canaryDeployment = world.fake.get('Deployment', NAMESPACE, 'checkout-canary') as { spec?: { replicas?: number } };
    expect(canaryDeployment.spec?.replicas).toBe(0);

    // The record in the cluster tells the whole story.
    expect(world.fake.get('ConfigMap', NAMESPACE, RECORD_CONFIGMAP)?.metadata?.labels).toMatchObject(OWNED);
    const record = world.record();
    expect(record).toMatchObject({
      phase: 'promoted',
      weight: 0,
      images: { stable: NEW_IMAGE, canary: NEW_IMAGE },
      startedBy: RUN_URL,
      outcome: { result: 'promoted', exitCode: 0 },
    });
    expect(record?.checks).toHaveLength(ran);
    expect(record?.checks.every((c) => c.verdict === 'pass')).toBe(true);
    const weights = record?.checks.map((c) => c.weight) ?? [];
    expect([...new Set(weights)]).toEqual([10, 25, 50]);
    expect(weights).toEqual([...weights].sort((a, b) => a - b));
    expect(record?.checks[0]?.results.map((r) => r.metric)).toEqual(expect.arrayContaining(['error-rate', 'p95-latency']));

    // `kubectl describe deployment checkout` tells the story too.
    const events = world.fake.list('Event', NAMESPACE) as { reason?: string; involvedObject?: { kind?: string; name?: string }; message?: string }[];
    const reasons = events.map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['CanaryStarted', 'CanaryStep', 'CanaryPromoted']));
    expect(reasons.filter((r) => r === 'CanaryStep')).toHaveLength(3);
    expect(events.every((e) => e.involvedObject?.kind === 'Deployment' && e.involvedObject.name === TARGET)).toBe(true);
    expect(events.find((e) => e.reason === 'CanaryPromoted')?.message).toContain(NEW_IMAGE);

    // The lease is given back, so the next deploy need not wait for it to expire.
    expect(world.fake.get('Lease', NAMESPACE, LEASE)).toBeUndefined();

    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toContain('phase:   promoted');
    expect(status.stdout).toContain('weight:  0% (recorded and live agree)');
    expect(status.stdout).toContain(`stable ${NEW_IMAGE}`);
    expect(status.stdout).toContain(`${ran} run: ${ran} passed, 0 failed`);
    expect(status.stdout).toContain(`nothing: stable runs ${NEW_IMAGE}`);

    const json = await world.run(['status', TARGET, '-n', NAMESPACE, '-o', 'json']);
    expect(json.code, json.stdout + json.stderr).toBe(0);
    const view = JSON.parse(json.stdout) as StatusView;
    expect(view).toMatchObject({ target: TARGET, namespace: NAMESPACE, phase: 'promoted', weight: { recorded: 0, live: 0, differs: false } });
    expect(view.checks.run).toBe(ran);
  });
});

describe('a flaky API server does not stop a rollout', () => {
  it('lands a weight PATCH while someone else annotates the Ingress, retries one answered 503 twice, and keeps annotations it does not own', async () => {
    // Calls may wait as long as the test holds them.
    const policy = await world.writePolicy('short', { steps: SHORT_STEPS, kubeTimeout: '60s' });
    const path = `/namespaces/${NAMESPACE}/ingresses/${CANARY_INGRESS}`;
    // The first weight PATCH is held up; meanwhile someone else annotates the Ingress. The raise is
    // fenced on our own annotations (rollout id, stop marker), not on the resourceVersion, so an
    // unrelated writer does not make it fail. The next raise then meets two 503s and is retried.
    const slow = world.holdRequests({ method: 'PATCH', pathPattern: path, times: 1 });
    const unavailable = world.fake.injectFault({ kind: 'status', code: 503, method: 'PATCH', pathPattern: path, times: 2 });

    const deploy = world.deploy([], { policy });
    await waitFor('the first weight PATCH to be in flight', () => slow.hits === 1);
    const ingress = world.canaryIngress();
    if (!ingress?.metadata) throw new Error('the canary Ingress should exist before its first weight PATCH');
    ingress.metadata.annotations = { ...ingress.metadata.annotations, 'ops.example.com/reviewed-by': 'sre' };
    world.fake.put(ingress);
    slow.release();

    const run = await deploy.done;
    expect(run.stderr).toBe('');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('PROMOTED');
    const patches = world.fake.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(path));
    expect(patches.slice(0, 4).map((r) => r.status)).toEqual([200, 503, 503, 200]);
    expect(unavailable.hits).toBe(2);
    expect(weightPatches()).toEqual(['10', '50', '100', '0']);
    // A patch of our annotations only: the other writer's annotation survives every weight change.
    expect(world.canaryIngress()?.metadata?.annotations).toMatchObject({ 'ops.example.com/reviewed-by': 'sre', [WEIGHT_ANNOTATION]: '0' });
    expect(world.record()?.phase).toBe('promoted');
  });
});

describe('canary status --watch', () => {
  it('redraws as the rollout moves and ends with the rollout, with its exit code', async () => {
    world.holdAt(10);
    const deploy = world.deploy();
    await waitFor('the first step', () => world.weight() === '10');
    const watch = world.start(['status', TARGET, '-n', NAMESPACE, '--watch']);
    await waitFor('the watch to show the rollout in progress', () => watch.stdout().includes('phase:   progressing'));
    world.release();
    const [deployed, watched] = await Promise.all([deploy.done, watch.done]);
    expect(deployed.code, deployed.stdout + deployed.stderr).toBe(0);
    expect(watched.code, watched.stdout + watched.stderr).toBe(0);
    const views = watched.stdout.split(/^(?=checkout \(namespace shop\))/m).filter((v) => v.trim());
    expect(views.length).toBeGreaterThan(1);
    expect(views[0]).toContain('phase:   progressing');
    expect(views.at(-1)).toContain('phase:   promoted');
  });
});

describe('header routing for smoke tests', () => {
  it('routes requests with the policy header to the canary during the rollout, and removes it at 0%', async () => {
    const policy = await world.writePolicy('header', { target: ['    headerRouting: { header: X-Canary, value: always }'] });
    const byHeader: (string | undefined)[] = [];
    world.holdAt(10);
    const deploy = world.deploy([], { policy });
    await waitFor('the first step', () => world.weight() === '10');
    byHeader.push(world.canaryIngress()?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-by-header']);
    world.release();
    const run = await deploy.done;
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(byHeader).toEqual(['X-Canary']);
    // At 0% nothing may still reach the canary, header or not.
    const annotations = world.canaryIngress()?.metadata?.annotations ?? {};
    expect(annotations[WEIGHT_ANNOTATION]).toBe('0');
    expect(annotations['nginx.ingress.kubernetes.io/canary-by-header']).toBeUndefined();
    expect(annotations['nginx.ingress.kubernetes.io/canary-by-header-value']).toBeUndefined();
  });
});
