// Preflight lists what would stop a rollout and writes nothing; examples/rbac.yaml grants
// exactly what it checks; Events land on the stable Deployment.

import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { connect } from '../../src/k8s/connection.js';
import { recordEvent } from '../../src/k8s/kube-events.js';
import { preflight, REQUIRED_ACCESS } from '../../src/k8s/preflight.js';
import { targetNames } from '../../src/policy/policy.js';
import { seedCheckout } from '../support/fake-kube/seed.js';
import { startFakeKube, type AccessRule, type FakeKube } from '../support/fake-kube/server.js';

let fake: FakeKube;

beforeEach(async () => {
  fake = await startFakeKube();
  seedCheckout(fake);
});
afterEach(async () => {
  await fake.stop();
});

const kc = () => connect({ kubeconfig: fake.kubeconfigPath }).kc;
const stateChanging = () => fake.writes().filter((r) => !r.path.endsWith('/selfsubjectaccessreviews'));

interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

function rbacRules(): { role: { metadata: { namespace: string }; rules: RbacRule[] }; binding: { subjects: { kind: string; name: string; namespace: string }[]; roleRef: { name: string } } } {
  const docs = parseAllDocuments(readFileSync(new URL('../../examples/rbac.yaml', import.meta.url), 'utf8')).map((d) => d.toJS() as { kind: string });
  const role = docs.find((d) => d.kind === 'Role');
  const binding = docs.find((d) => d.kind === 'RoleBinding');
  if (!role || !binding) throw new Error('examples/rbac.yaml needs a Role and a RoleBinding');
  return { role: role as never, binding: binding as never };
}

describe('preflight', () => {
  it('finds nothing to complain about in a complete namespace with full access', async () => {
    expect(await preflight({ kc: kc(), namespace: 'shop', names: targetNames('checkout', {}) })).toEqual([]);
  });

  it('lists a missing permission and missing objects, and writes nothing', async () => {
    fake.deny({ verb: 'patch', group: 'networking.k8s.io', resource: 'ingresses' }, { verb: 'create', group: '', resource: 'events' });
    fake.remove('Service', 'shop', 'checkout-canary');
    fake.clearRequests();

    const problems = await preflight({ kc: kc(), namespace: 'shop', names: targetNames('checkout', { stableIngress: 'storefront' }) });

    expect(problems).toEqual([
      'Ingress shop/storefront not found (the stable ingress; set spec.target.stableIngress in the policy if it has another name)',
      'Service shop/checkout-canary not found (the canary service; set spec.target.canaryService in the policy if it has another name)',
      'cannot patch ingresses.networking.k8s.io in namespace shop',
      'cannot create events in namespace shop',
    ]);
    expect(stateChanging()).toEqual([]);
  });

  it('a user bound to examples/rbac.yaml passes; one verb less is reported', async () => {
    const { role } = rbacRules();
    const rules: AccessRule[] = role.rules.flatMap((r) =>
      r.apiGroups.flatMap((group) => r.resources.flatMap((resource) => r.verbs.map((verb) => ({ verb, group, resource, namespace: 'shop' })))),
    );
    fake.allow([...rules, { verb: 'create', group: 'authorization.k8s.io', resource: 'selfsubjectaccessreviews' }]);
    expect(await preflight({ kc: kc(), namespace: 'shop', names: targetNames('checkout', {}) })).toEqual([]);
    // The same Role in another namespace grants nothing here.
    expect(await preflight({ kc: kc(), namespace: 'other', names: targetNames('checkout', {}) })).toContain('cannot get leases.coordination.k8s.io in namespace other');

    fake.deny({ verb: 'delete', group: 'coordination.k8s.io', resource: 'leases' });
    expect(await preflight({ kc: kc(), namespace: 'shop', names: targetNames('checkout', {}) })).toEqual(['cannot delete leases.coordination.k8s.io in namespace shop']);
  });
});

describe('examples/rbac.yaml', () => {
  it('grants exactly REQUIRED_ACCESS, both ways', () => {
    const { role, binding } = rbacRules();
    const granted = new Set(
      role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${g}/${res}`)))),
    );
    const required = new Set(REQUIRED_ACCESS.map((a) => `${a.verb} ${a.group}/${a.resource}${a.subresource ? `/${a.subresource}` : ''}`));
    expect([...granted].sort()).toEqual([...required].sort());
    expect(granted.size).toBe(REQUIRED_ACCESS.length);
    expect(binding.roleRef.name).toBe('canary');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'canary', namespace: 'ci' }]);
  });
});

describe('recordEvent', () => {
  it('records an Event on the stable Deployment that kubectl describe would show', async () => {
    const why = await recordEvent(kc(), 'shop', 'checkout', { reason: 'CanaryStep', message: 'step 2/4: 25% of traffic to the canary' });
    expect(why).toBeUndefined();
    const [event] = fake.list('Event', 'shop');
    const deployment = fake.get('Deployment', 'shop', 'checkout');
    expect(event).toMatchObject({
      reason: 'CanaryStep',
      message: 'step 2/4: 25% of traffic to the canary',
      type: 'Normal',
      involvedObject: { kind: 'Deployment', name: 'checkout', namespace: 'shop', uid: deployment?.metadata?.uid },
      source: { component: 'canary-cli' },
    });
  });

  it('never throws: a refused Event comes back as a sentence', async () => {
    fake.deny({ verb: 'create', group: '', resource: 'events' });
    const why = await recordEvent(kc(), 'shop', 'checkout', { reason: 'CanaryRolledBack', message: 'x', type: 'Warning' });
    expect(why).toMatch(/could not record event CanaryRolledBack on Deployment shop\/checkout: .*cannot create resource "events"/);
    expect(fake.list('Event', 'shop')).toEqual([]);
  });
});
