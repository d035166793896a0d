// Who may do what: one rule list answers both SelfSubjectAccessReviews and real requests, so a
// preflight that passes here is never contradicted by a 403 later (and vice versa).

export interface AccessRule {
  /** get, list, watch, create, update, patch, delete, deletecollection, or '*'. */
  verb: string;
  /** '' for core, 'apps', 'networking.k8s.io', ... or '*'. */
  group: string;
  /** Plural resource, RBAC style: 'deployments', 'deployments/scale', '*', '*\/scale'. */
  resource: string;
  /** Omitted or '*' for any namespace. */
  namespace?: string;
}

export interface AccessAttributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
}

function resourceMatches(ruleResource: string, resource: string, subresource: string | undefined): boolean {
  const full = subresource ? `${resource}/${subresource}` : resource;
  if (ruleResource === '*' || ruleResource === full) return true;
  if (subresource && ruleResource === `*/${subresource}`) return true;
  return false;
}

function matches(rule: AccessRule, a: AccessAttributes): boolean {
  return (
    (rule.verb === '*' || rule.verb === a.verb) &&
    (rule.group === '*' || rule.group === a.group) &&
    resourceMatches(rule.resource, a.resource, a.subresource) &&
    (rule.namespace === undefined || rule.namespace === '*' || rule.namespace === a.namespace)
  );
}

export class AccessPolicy {
  /** undefined: everything is allowed (the default). */
  private allowList: AccessRule[] | undefined;
  private denyList: AccessRule[] = [];

  allow(rules: readonly AccessRule[]): void {
    this.allowList = [...rules];
    this.denyList = [];
  }

  deny(rules: readonly AccessRule[]): void {
    this.denyList.push(...rules);
  }

  allowAll(): void {
    this.allowList = undefined;
    this.denyList = [];
  }

  allows(a: AccessAttributes): boolean {
    if (this.denyList.some((rule) => matches(rule, a))) return false;
    return this.allowList === undefined || this.allowList.some((rule) => matches(rule, a));
  }
}
