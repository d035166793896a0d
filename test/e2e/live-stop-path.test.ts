import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../support/fake-kube/server.js';
import {
  CANARY_ANNOTATION,
  CANARY_INGRESS,
  LEASE,
  NAMESPACE,
  NEW_IMAGE,
  RECORD_CONFIGMAP,
  SHORT_STEPS,
  startLiveWorld,
  TARGET,
  waitFor,
  WEIGHT_ANNOTATION,
  type LiveWorld,
  ROLLBACK,
} from '../support/live-harness.js';

// The one stop path through the CLI against the fake API server (issue 8, observations 1, 2, 3
// and 9). Every wait is on state the test can see in the API (a weight, a record, a held
// request), never on how long something took.

let world: LiveWorld;
beforeAll(async () => {
  world = await startLiveWorld();
});
afterAll(async () => {
  await world?.stop();
});
beforeEach(() => world.reset());


type Deployment = { spec?: { replicas?: number; template?: { spec?: { containers?: { image?: string }[] } } } };
const deployment = (name: string) => world.fake.get('Deployment', NAMESPACE, name) as Deployment | undefined;
const replicas = (name: string) => deployment(name)?.spec?.replicas;
const stableImage = () => deployment(TARGET)?.spec?.template?.spec?.containers?.[0]?.image;

const isIngressPatch = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith(`/ingresses/${CANARY_INGRESS}`);
const isCanaryScale = (r: RecordedRequest) =>
  r.method === 'PATCH' && r.path.endsWith('/deployments/checkout-canary') && (r.body as Deployment | undefined)?.spec?.replicas === 0;

/** The weight a PATCH of the canary Ingress asked for, merge patch or JSON Patch. */
function weightAskedFor(r: RecordedRequest): string | undefined {
  const body = r.body as unknown;
  if (Array.isArray(body)) {
    const op = (body as { op: string; path: string; value?: unknown }[]).find((o) => o.op !== 'test' && o.path === '/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight');
    return typeof op?.value === 'string' ? op.value : undefined;
  }
  const annotations = (body as { metadata?: { annotations?: Record<string, string | null> } } | undefined)?.metadata?.annotations;
  return annotations?.[WEIGHT_ANNOTATION] ?? undefined;
}

describe('observation 1: rollback while a deploy is promoting', () => {
  it('sends traffic to stable first, sets stable back to its recorded image and waits for it; the deploy exits 4', async () => {
    const policy = await world.writePolicy('promote-slow', { steps: SHORT_STEPS, readyTimeout: '300s' });
    // Stable takes as long as the test says to roll out.
    world.fake.setDeploymentBehavior(NAMESPACE, TARGET, 'frozen');
    const deploy = world.deploy([], { policy });
    await waitFor('the deploy to update stable during its promotion', () => world.record()?.phase === 'promoting' && world.weight() === '100' && stableImage() === NEW_IMAGE, 120_000);

    const rollback = world.start(ROLLBACK, { policy });
    await waitFor('the rollback to send traffic to stable and set stable back', () => world.weight() === '0' && stableImage() === world.seeded.image, 120_000);
    world.fake.setDeploymentBehavior(NAMESPACE, TARGET, 'ready');

    const rb = await rollback.done;
    expect(rb.stderr).toBe('');
    expect(rb.code).toBe(0);
    expect(rb.stdout).toContain(`canary Ingress ${CANARY_INGRESS}: weight 100% → 0%, all traffic on stable`);
    expect(rb.stdout).toContain(`stable Deployment ${TARGET} set back to ${world.seeded.image} and available`);
    const run = await deploy.done;
    expect(run.code).toBe(4);

    expect(world.weight()).toBe('0');
    expect(stableImage()).toBe(world.seeded.image);
    expect(replicas('checkout-canary')).toBe(0);
    expect(world.record()).toMatchObject({
      phase: 'aborted',
      images: { stable: world.seeded.image },
      rollback: { stableVerified: true, stableRestore: { image: world.seeded.image, done: true } },
    });
  }, 180_000);
});

describe('observation 2: a raise in flight when rollback runs', () => {
  it('fails its fence: the weight ends 0 and stays 0, the canary is scaled down only after 0, the deploy exits 4', async () => {
    // A long call timeout, so the held raise is not retried by the client: the race is exactly one PATCH.
    const policy = await world.writePolicy('race', { steps: [{ weight: 10, duration: '2s' }, { weight: 50, duration: '2s' }], kubeTimeout: '120s' });
    const deploy = world.deploy([], { policy });
    await waitFor('the first step', () => world.weight() === '10' && world.record()?.weight === 10, 120_000);
    let release = () => undefined as void;
    const hold = world.fake.injectFault({ kind: 'hold', until: new Promise<void>((resolve) => (release = resolve)), method: 'PATCH', pathPattern: `/ingresses/${CANARY_INGRESS}` });
    await waitFor('the raise to 50% to reach the API server, where it is held', () => hold.hits === 1, 60_000);

    const rollback = await world.run(ROLLBACK, { policy });
    expect(rollback.code).toBe(0);
    expect(rollback.stdout).toContain(`weight in force (re-read): ${CANARY_INGRESS} 0%`);
    expect(world.weight()).toBe('0');
    expect(replicas('checkout-canary')).toBe(0);

    release();
    const run = await deploy.done;
    expect(run.code).toBe(4);
    expect(world.weight()).toBe('0');
    // The held raise failed its test op; no raise landed after the rollback.
    const held = world.fake.requests.find((r) => r.fault === 'hold');
    expect(held?.status).toBe(422);
    expect(world.fake.requests.filter((r) => isIngressPatch(r) && r.status === 200 && weightAskedFor(r) === '50')).toEqual([]);
    // The canary was scaled down only after a 0% write had landed.
    const requests = world.fake.requests;
    const zero = requests.findIndex((r) => isIngressPatch(r) && r.status === 200 && weightAskedFor(r) === '0');
    const scale = requests.findIndex(isCanaryScale);
    expect(zero).toBeGreaterThanOrEqual(0);
    expect(scale).toBeGreaterThan(zero);
  }, 180_000);
});

describe('observation 3: deploy --resume from promoting', () => {
  it('never routes weight to a canary already scaled to 0: stable runs the new image, so traffic goes straight to it', async () => {
    const policy = await world.writePolicy('short', { steps: SHORT_STEPS });
    expect((await world.deploy([], { policy }).done).code).toBe(0);
    // The record as a deploy killed at the end of its promotion leaves it: canary scaled down,
    // stable on the new image, the record still promoting.
    const promoted = world.record();
    if (!promoted) throw new Error('no record');
    const { outcome: _outcome, ...rest } = promoted;
    const dying = { ...rest, phase: 'promoting', weight: 0, images: { ...promoted.images, stable: world.seeded.image } };
    const cm = world.fake.get('ConfigMap', NAMESPACE, RECORD_CONFIGMAP);
    if (!cm) throw new Error('no record ConfigMap');
    world.fake.put({ ...cm, data: { ...(cm['data'] as Record<string, string>), 'record.json': JSON.stringify(dying) } });
    expect(replicas('checkout-canary')).toBe(0);
    world.fake.clearRequests();

    const resumed = await world.deploy(['--resume'], { policy }).done;
    expect(resumed.code).toBe(0);
    expect(world.fake.requests.filter((r) => isIngressPatch(r) && weightAskedFor(r) === '100')).toEqual([]);
    expect(world.weight()).toBe('0');
    expect(world.record()).toMatchObject({ phase: 'promoted', images: { stable: NEW_IMAGE }, outcome: { result: 'promoted' } });
  }, 180_000);
});

describe('observation 9: the API server down mid-step', () => {
  it('keeps trying 0%: no scale-down, rollback record or Lease release until a read shows 0%; then all of them', async () => {
    const policy = await world.writePolicy('outage', { steps: [{ weight: 10, duration: '60s' }, { weight: 50, duration: '1s' }], attempts: 2 });
    const deploy = world.deploy([], { policy });
    await waitFor('the first step', () => world.weight() === '10' && world.record()?.weight === 10, 120_000);
    const down = world.fake.injectFault({ kind: 'status', code: 503, times: Infinity });
    const stopTries = () => world.fake.requests.filter((r) => r.fault === 'status' && r.method === 'GET' && r.path.endsWith('/ingresses') && r.query.includes('labelSelector')).length;
    await waitFor("three tries of the stop's 0% write", () => stopTries() >= 3, 60_000);
    expect(down.hits).toBeGreaterThan(0);
    // While no read has shown 0%: the canary keeps its pods, the Lease stays, nothing says "rolled back".
    expect(world.fake.requests.filter(isCanaryScale)).toEqual([]);
    expect(replicas('checkout-canary')).toBeGreaterThan(0);
    expect(world.fake.get('Lease', NAMESPACE, LEASE)).toBeDefined();
    expect(world.record()?.rollback).toBeUndefined();
    expect((world.fake.list('Event', NAMESPACE) as { reason?: string }[]).filter((e) => e.reason === 'CanaryRolledBack')).toEqual([]);

    world.fake.clearFaults();
    const run = await deploy.done;
    expect(run.code).toBe(5);
    expect(world.weight()).toBe('0');
    expect(replicas('checkout-canary')).toBe(0);
    expect(world.record()).toMatchObject({ weight: 0, rollback: { stableVerified: true } });
    expect(run.stdout).toContain('traffic: canary at 0%, all traffic on stable');
    const requests = world.fake.requests;
    const zero = requests.findIndex((r) => isIngressPatch(r) && r.status === 200 && weightAskedFor(r) === '0');
    expect(zero).toBeGreaterThanOrEqual(0);
    expect(requests.findIndex(isCanaryScale)).toBeGreaterThan(zero);
  }, 180_000);
});

describe('observation 9: a canary Ingress that is not ours', () => {
  it('sending 5% to the canary is reported and left alone; no "all traffic on stable", no invented record, exit 1', async () => {
    world.fake.put({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'checkout-by-hand', namespace: NAMESPACE, annotations: { [CANARY_ANNOTATION]: 'true', [WEIGHT_ANNOTATION]: '5' } },
      spec: {
        ingressClassName: 'nginx',
        rules: [{ host: 'shop.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'checkout-canary', port: { number: 80 } } } }] } }],
      },
    });
    const run = await world.run(ROLLBACK);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('canary Ingress checkout-by-hand is not ours (no canary-cli labels for checkout) and sends 5% to Service checkout-canary: left as it is');
    expect(run.stdout).toContain('traffic is NOT all on stable');
    expect(run.stdout).not.toMatch(/all traffic (is )?on stable/);
    expect(world.record()).toBeUndefined();
    expect(world.fake.get('ConfigMap', NAMESPACE, RECORD_CONFIGMAP)).toBeUndefined();
    expect(world.fake.get('Ingress', NAMESPACE, 'checkout-by-hand')?.metadata?.annotations?.[WEIGHT_ANNOTATION]).toBe('5');
    expect(world.changes()).toEqual([]);
  }, 180_000);
});

describe('observation 9: SIGKILL, rollback, then a new deploy at once', () => {
  it('the dead deploy\'s Lease no longer blocks the next deploy once rollback has confirmed 0%', async () => {
    const policy = await world.writePolicy('long', { steps: [{ weight: 10, duration: '60s' }], leaseDuration: '300s' });
    const deploy = world.deploy([], { policy });
    await waitFor('the first step', () => world.weight() === '10' && world.record()?.weight === 10, 120_000);
    deploy.child.kill('SIGKILL');
    await deploy.done;
    expect(world.fake.get('Lease', NAMESPACE, LEASE)).toBeDefined();

    const rollback = await world.run(ROLLBACK, { policy });
    expect(rollback.code).toBe(0);
    expect(rollback.stdout).toContain(`Lease ${LEASE} of the stopped deploy deleted: the next deploy can start at once`);
    expect(world.fake.get('Lease', NAMESPACE, LEASE)).toBeUndefined();

    const short = await world.writePolicy('short', { steps: SHORT_STEPS });
    const next = await world.deploy([], { policy: short }).done;
    expect(next.stderr).not.toContain('already running');
    expect(next.code).toBe(0);
  }, 180_000);
});
