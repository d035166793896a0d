// The Gateway API router's pitfalls, read off the HTTPRoute without writing: a route the router
// would refuse (its own parser says why), and a route no Gateway has accepted — the API server
// stores any route, but only an accepted one carries traffic, so a rollout would judge a canary
// that serves no one.

import { parseRoute, refOf, type HttpRoute } from '../k8s/httproute-shape.js';
import type { TargetNames } from '../policy/policy.js';
import { CanaryError } from '../errors.js';
import { fail, ok, warn, type Finding } from './finding.js';

export function httpRouteFindings(route: HttpRoute, names: TargetNames): Finding[] {
  const findings: Finding[] = [];
  const ref = refOf(route);
  try {
    const shape = parseRoute(route, { stableService: names.stableService, canaryService: names.canaryService });
    findings.push(ok('router', 'route-shape', `HTTPRoute ${ref}: rule ${shape.ruleIndex} sends to ${names.stableService}; the deploy adds ${names.canaryService} beside it`));
  } catch (err) {
    if (!(err instanceof CanaryError)) throw err;
    findings.push(fail('router', 'route-shape', err.message.replace(/; nothing was changed$/, ''), 'change the route as the message says (docs/routers.md lists the shapes the router splits)'));
  }

  const generation = route.metadata?.generation;
  const parents = route.status?.parents ?? [];
  if (parents.length === 0) {
    findings.push(fail('router', 'route-accepted', `no Gateway has reported on HTTPRoute ${ref} (status.parents is empty): no controller serves it, so no traffic would reach stable or canary through it`, 'check spec.parentRefs names a Gateway whose controller is running, and that the Gateway allows routes from this namespace'));
    return findings;
  }
  for (const parent of parents) {
    const gateway = String(parent.parentRef?.['name'] ?? '?');
    const accepted = parent.conditions?.find((c) => c.type === 'Accepted');
    const resolved = parent.conditions?.find((c) => c.type === 'ResolvedRefs');
    const why = (c: { reason?: string; message?: string } | undefined) => [c?.reason, c?.message].filter(Boolean).join(': ');
    if (accepted?.status !== 'True') {
      findings.push(fail('router', 'route-accepted', `Gateway ${gateway} has not accepted HTTPRoute ${ref} (Accepted=${accepted?.status ?? 'absent'}${why(accepted) ? `, ${why(accepted)}` : ''})`, `fix what the Gateway's controller (${parent.controllerName ?? 'unknown'}) reports, then run doctor again`));
    } else if (generation !== undefined && accepted.observedGeneration !== undefined && accepted.observedGeneration < generation) {
      findings.push(warn('router', 'route-accepted', `Gateway ${gateway} accepted generation ${accepted.observedGeneration} of HTTPRoute ${ref}, not the current ${generation}: its controller has not caught up with the last change`, 'wait for the controller to report on the current generation'));
    } else if (resolved !== undefined && resolved.status !== 'True') {
      findings.push(fail('router', 'route-accepted', `Gateway ${gateway} accepted HTTPRoute ${ref} but cannot resolve its backends (ResolvedRefs=${resolved.status}${why(resolved) ? `, ${why(resolved)}` : ''})`, 'check the backendRefs name existing Services and ports (and a ReferenceGrant for another namespace)'));
    } else {
      findings.push(ok('router', 'route-accepted', `Gateway ${gateway} accepted HTTPRoute ${ref}${generation !== undefined ? ` (generation ${generation})` : ''}`));
    }
  }
  return findings;
}
