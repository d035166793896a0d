// examples/rbac-gateway-api.yaml grants what the Gateway API router needs and nothing more, as
// examples/rbac.yaml does for ingress-nginx: the same set but HTTPRoute verbs for Ingress ones.

import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { GATEWAY_API_ACCESS, REQUIRED_ACCESS, requiredAccess } from '../../src/k8s/preflight.js';

interface Role {
  kind: string;
  rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
}

function granted(file: string): string[] {
  const docs = parseAllDocuments(readFileSync(new URL(`../../examples/${file}`, import.meta.url), 'utf8')).map((d) => d.toJS() as Role);
  const role = docs.find((d) => d.kind === 'Role');
  if (!role) throw new Error(`${file} needs a Role`);
  return role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${g}/${res}`)))).sort();
}
const asStrings = (set: typeof REQUIRED_ACCESS) => set.map((a) => `${a.verb} ${a.group}/${a.resource}${a.subresource ? `/${a.subresource}` : ''}`).sort();

describe('RBAC per router', () => {
  it('examples/rbac-gateway-api.yaml grants exactly the Gateway API router set', () => {
    expect(granted('rbac-gateway-api.yaml')).toEqual(asStrings(GATEWAY_API_ACCESS));
    expect(requiredAccess('gateway-api')).toBe(GATEWAY_API_ACCESS);
    expect(requiredAccess('ingress-nginx')).toBe(REQUIRED_ACCESS);
  });

  it('the two sets differ only in the traffic object: HTTPRoute get/list/patch instead of Ingress verbs', () => {
    const gw = new Set(asStrings(GATEWAY_API_ACCESS));
    const ing = new Set(asStrings(REQUIRED_ACCESS));
    expect([...gw].filter((a) => !ing.has(a))).toEqual(['get gateway.networking.k8s.io/httproutes', 'list gateway.networking.k8s.io/httproutes', 'patch gateway.networking.k8s.io/httproutes']);
    expect([...ing].filter((a) => !gw.has(a)).every((a) => a.endsWith(' networking.k8s.io/ingresses'))).toBe(true);
  });
});
