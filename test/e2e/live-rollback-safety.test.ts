import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CANARY_INGRESS,
  NAMESPACE,
  NEW_IMAGE,
  ownCanaryIngress,
  RECORD_CONFIGMAP,
  SHORT_STEPS,
  startLiveWorld,
  TARGET,
  WEIGHT_ANNOTATION,
  waitFor,
  type LiveWorld,
  ROLLBACK,
  rollbackCommand,
} from '../support/live-harness.js';
import type { KubeObject } from '../support/fake-kube/server.js';

// `canary rollback` where it used to go wrong: a deploy raising the weight between our PATCH and
// our record, several canary Ingresses of ours, a rollout already promoted, an API server that
// refuses the patch, a stable that cannot be verified, incident secrets that are missing, a reason
// that tries to inject workflow commands, and the outputs a GitHub workflow acts on.

let world: LiveWorld;
let hook: Server;
let hookRequests = 0;
let hookUrl = '';
beforeAll(async () => {
  world = await startLiveWorld();
  // An incident webhook that counts what reaches it.
  hook = createServer((req, res) => {
    hookRequests += 1;
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/incident`;
});
afterAll(async () => {
  await world?.stop();
  await new Promise((resolve) => hook?.close(resolve));
});
beforeEach(() => {
  world.reset();
  hookRequests = 0;
});


/** Our canary Ingress under another name, as an earlier policy (spec.target.canaryIngress) left it. */
function ownedIngressNamed(name: string, weight: number): KubeObject {
  const ing = ownCanaryIngress(weight);
  return { ...ing, metadata: { ...ing.metadata, name } };
}

const replicas = (name: string) => (world.fake.get('Deployment', NAMESPACE, name) as { spec?: { replicas?: number } } | undefined)?.spec?.replicas;

describe('a deploy raising the weight while rollback records the abort', () => {
  it('is caught: after the abort is saved every canary Ingress is read again and set back to 0 before the canary is scaled down', async () => {
    world.fake.put(ownCanaryIngress(30));
    // Hold rollback's read of the record until the "deploy" has written in between.
    const policy = await world.writePolicy('patient', { kubeTimeout: '60s' });
    const read = world.holdRequests({ method: 'GET', pathPattern: `/configmaps/${RECORD_CONFIGMAP}` });
    const rollback = world.start(ROLLBACK, { policy });
    await waitFor('rollback to read the record', () => read.hits === 1);
    expect(world.weight()).toBe('0');
    // A deploy that saved its step record before our abort now sets its step's weight.
    world.fake.put(ownCanaryIngress(25));
    read.release();

    const run = await rollback.done;
    expect(run.stderr).toBe('');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`canary Ingress ${CANARY_INGRESS}: weight 30% → 0%, all traffic on stable`);
    expect(run.stdout).toContain(`canary Ingress ${CANARY_INGRESS} was raised to 25% after our first write: set to 0% again`);
    expect(run.stdout).toContain(`weight in force (re-read): ${CANARY_INGRESS} 0%`);
    expect(world.weight()).toBe('0');
    // The second PATCH came after the record was written.
    const writes = world.changes();
    const save = writes.findIndex((w) => w.path.includes('/configmaps'));
    const patches = writes.map((w, i) => (w.method === 'PATCH' && w.path.endsWith(`/ingresses/${CANARY_INGRESS}`) ? i : -1)).filter((i) => i >= 0);
    expect(patches).toHaveLength(2);
    expect(patches[1]).toBeGreaterThan(save);
  });
});

describe('more than one canary Ingress of ours', () => {
  it('rollback sets each to 0 and reports each; status reads the one the names point at and warns', async () => {
    world.fake.put(ownCanaryIngress(30));
    // Sorts before checkout-canary: the old code zeroed only this one.
    world.fake.put(ownedIngressNamed('checkout-blue-canary', 20));
    const run = await world.run(ROLLBACK);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('canary Ingress checkout-blue-canary: weight 20% → 0%, all traffic on stable');
    expect(run.stdout).toContain(`canary Ingress ${CANARY_INGRESS}: weight 30% → 0%, all traffic on stable`);
    expect(run.stdout).toContain(`weight in force (re-read): checkout-blue-canary 0%, ${CANARY_INGRESS} 0%`);
    expect(world.weight()).toBe('0');
    expect(world.fake.get('Ingress', NAMESPACE, 'checkout-blue-canary')?.metadata?.annotations?.[WEIGHT_ANNOTATION]).toBe('0');

    // The leftover takes traffic again (a hand edit); status shows checkout-canary's weight and warns.
    world.fake.put(ownedIngressNamed('checkout-blue-canary', 40));
    const status = await world.run(['status', TARGET, '-n', NAMESPACE]);
    expect(status.code, status.stdout + status.stderr).toBe(4);
    expect(status.stdout).toContain('weight:  0% (recorded and live agree)');
    expect(status.stderr).toContain(
      `canary: warning: 2 canary Ingresses of checkout in namespace shop carry our label: checkout-blue-canary (40%), ${CANARY_INGRESS} (0%); the weight shown is ${CANARY_INGRESS}'s`,
    );
  });
});

describe('rollback after a promotion', () => {
  it('does not claim an abort: says what would undo it, exits 1, opens no incident, and still sends the canary to 0', async () => {
    const short = await world.writePolicy('short', { steps: SHORT_STEPS });
    const deploy = await world.deploy([], { policy: short }).done;
    expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
    const promoted = world.record();
    expect(promoted?.phase).toBe('promoted');
    // Someone put weight back on the canary Ingress by hand after the promotion.
    const ing = world.canaryIngress() as KubeObject;
    world.fake.put({ ...ing, metadata: { ...ing.metadata, annotations: { ...ing.metadata?.annotations, [WEIGHT_ANNOTATION]: '40' } } });

    const withIncident = await world.writePolicy('with-incident', { steps: SHORT_STEPS, incidents: [`    - { type: webhook, name: ops, url: "${hookUrl}" }`] });
    const run = await world.run(ROLLBACK, { policy: withIncident });
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toContain(
      `rollout ${promoted?.id} was promoted at ${promoted?.outcome?.at}; stable runs ${NEW_IMAGE}; canary rollback cannot undo a promotion: run kubectl rollout undo deployment/${TARGET} -n ${NAMESPACE}`,
    );
    expect(run.stdout).not.toMatch(/abort/i);
    expect(run.stdout).not.toContain('incident');
    expect(hookRequests).toBe(0);
    expect(world.weight()).toBe('0');
    expect(world.record()).toMatchObject({ id: promoted?.id, phase: 'promoted', outcome: { result: 'promoted' } });
    expect(world.record()?.rollback).toBeUndefined();
  });
});

describe('errors and facts', () => {
  it('an admission webhook refusing the PATCH (400) is exit 2 with the server\'s message, not the raw client error', async () => {
    world.fake.put(ownCanaryIngress(30));
    const webhook = 'admission webhook "validate.nginx.ingress.kubernetes.io" denied the request: nginx config test failed';
    world.fake.injectFault({ kind: 'status', code: 400, method: 'PATCH', pathPattern: `/ingresses/${CANARY_INGRESS}`, message: webhook });
    const run = await world.run(ROLLBACK);
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expect(run.stderr).toContain(`canary: Kubernetes API rejected setting the canary weight of Ingress ${NAMESPACE}/${CANARY_INGRESS} to 0%: HTTP 400 InternalError: ${webhook}`);
    expect(run.stderr).not.toMatch(/HTTP-Code|Headers|Body:/);
    expect(run.stderr).not.toContain(world.fake.token);
  });

  it('stores whether stable was verified in the record', async () => {
    world.fake.put(ownCanaryIngress(30));
    const run = await world.run(ROLLBACK);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(world.record()?.rollback).toMatchObject({ reason: 'pager', stableVerified: true, stableMessage: 'Deployment shop/checkout: 3 of 3 replicas available (3 updated, 3 ready)' });
  });

  it('exits 1 when stable cannot be verified at all, and says "not found" for a canary Deployment that does not exist', async () => {
    world.fake.put(ownCanaryIngress(30));
    world.fake.remove('Deployment', NAMESPACE, 'checkout-canary');
    world.fake.remove('Deployment', NAMESPACE, TARGET);
    const run = await world.run(ROLLBACK);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(world.weight()).toBe('0');
    expect(run.stdout).toContain('Deployment checkout-canary not found: no canary pods to scale down');
    expect(run.stdout).not.toContain('scaled to 0');
    expect(run.stdout).toContain('STABLE COULD NOT BE VERIFIED: the stable Deployment shop/checkout does not exist');
    expect(world.record()?.rollback).toMatchObject({ stableVerified: false });
    expect(replicas('checkout-canary')).toBeUndefined();
  });
});

describe('incidents never block the traffic switch', () => {
  it('a missing Slack secret costs the incident, not the rollback', async () => {
    world.fake.put(ownCanaryIngress(30));
    const policy = await world.writePolicy('slack', { incidents: ['    - { type: slack, webhookUrl: { env: E2E_UNSET_SLACK_WEBHOOK_URL } }'] });
    const run = await world.run(ROLLBACK, { policy, env: { E2E_UNSET_SLACK_WEBHOOK_URL: undefined } });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(world.weight()).toBe('0');
    expect(run.stdout).toContain(`canary Ingress ${CANARY_INGRESS}: weight 30% → 0%, all traffic on stable`);
    expect(run.stdout).toMatch(/^incident not opened: .*E2E_UNSET_SLACK_WEBHOOK_URL/m);
    expect(world.record()).toMatchObject({ phase: 'aborted', weight: 0 });
  });
});

describe('--reason', () => {
  it('is flattened to one line, so a workflow_dispatch input cannot inject workflow commands', async () => {
    world.fake.put(ownCanaryIngress(30));
    const run = await world.run(rollbackCommand(NAMESPACE, 'checkout 500s\n::error::injected\r\n::add-mask::x'));
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).not.toMatch(/^::/m);
    expect(world.record()?.rollback?.reason).toBe('checkout 500s ::error::injected ::add-mask::x');
  });

  it('with a terminal escape is refused (exit 2) before anything is touched', async () => {
    world.fake.put(ownCanaryIngress(30));
    world.fake.clearRequests();
    const run = await world.run(rollbackCommand(NAMESPACE, 'pager \u001b[2J'));
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expect(run.stderr).toContain('--reason: expected plain text, got a control character (U+001B)');
    expect(world.weight()).toBe('30');
    expect(world.changes()).toEqual([]);
  });
});

describe('in GitHub Actions', () => {
  it('writes the step outputs and a short job summary', async () => {
    world.fake.put(ownCanaryIngress(30));
    const output = join(world.dir, 'github-output');
    const summary = join(world.dir, 'github-summary');
    writeFileSync(output, '');
    writeFileSync(summary, '');
    const run = await world.run(ROLLBACK, { env: { GITHUB_ACTIONS: 'true', GITHUB_OUTPUT: output, GITHUB_STEP_SUMMARY: summary } });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const id = world.record()?.id ?? '';
    expect(id).not.toBe('');
    expect(readFileSync(output, 'utf8')).toBe(`result=aborted\nrollout-id=${id}\nfinal-weight=0\nexit-code=0\nincident-url=\n`);
    const text = readFileSync(summary, 'utf8');
    expect(text).toContain('## canary rollback checkout: aborted (exit 0)');
    expect(text).toContain(`- canary Ingress ${CANARY_INGRESS}: weight 30% → 0%, all traffic on stable`);
    expect(text).toContain(`- record ${id}: aborted by`);
  });

  it('sets the outputs when the rollback itself fails', async () => {
    world.fake.put(ownCanaryIngress(30));
    world.fake.injectFault({ kind: 'status', code: 400, method: 'PATCH' });
    const output = join(world.dir, 'github-output-failed');
    writeFileSync(output, '');
    const run = await world.run(ROLLBACK, { env: { GITHUB_ACTIONS: 'true', GITHUB_OUTPUT: output } });
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expect(readFileSync(output, 'utf8')).toBe('result=failed\nrollout-id=\nfinal-weight=\nexit-code=2\nincident-url=\n');
  });
});
