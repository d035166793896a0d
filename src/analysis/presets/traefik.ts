import type { Preset } from '../preset.js';

// Traefik: the per-service request counter and duration histogram (`traefik_service_requests_total`,
// `traefik_service_request_duration_seconds`, labels `code`, `method`, `protocol`, `service`;
// pkg/observability/metrics/prometheus.go). They are recorded per leaf load-balancer service
// (pkg/server/service/service.go), never for the weighted service above them, and `service` is the
// provider-qualified name (`<name>@<provider>`). Two providers carry a canary our routers move:
//
// - kubernetesIngressNGINX (Traefik v3.7+ honours the canary annotations), with the ingress-nginx
//   router: the main Ingress's backend is `<ns>-<ingress>-<service>-<port>` (build.go) and the canary
//   Ingress's backend becomes `<that>-canary` (translator.go) — named after the STABLE Service and
//   Ingress, not the canary Service;
// - kubernetesgateway, with the Gateway API router: each backendRef is its own service, since
//   v3.7.6 `httproute-<ns>-<route>-gw-<gw ns>-<gw>-ep-<entrypoint>-<rule>-svc-<ns>-<service>-<index>`,
//   before that `<ns>-<service>-http-<port>` (gateway/httproute.go loadService).
//
// The port segment is matched without dashes (a number, or a port name without "-"), so the stable
// pattern can never match the canary's service. Namespaces and Service names are DNS labels, so the
// values need no regex escaping. Counters are per Traefik pod: always summed. Traefik's `namespace`
// label (if any) is Traefik's own, so it is not matched.

function services(side: 'canary' | 'stable'): string {
  const ingressNginx =
    side === 'canary'
      ? '{{namespace}}-{{ingress}}-{{stableService}}-[a-z0-9]+-canary@kubernetesingressnginx'
      : '{{namespace}}-{{ingress}}-{{stableService}}-[a-z0-9]+@kubernetesingressnginx';
  const service = side === 'canary' ? '{{canaryService}}' : '{{stableService}}';
  const gateway = `httproute-{{namespace}}-.+-svc-{{namespace}}-${service}-[0-9]+@kubernetesgateway`;
  const gatewayBefore376 = `{{namespace}}-${service}-http-[0-9]+@kubernetesgateway`;
  return `service=~"${ingressNginx}|${gateway}|${gatewayBefore376}"`;
}

export function traefikPreset(count: (series: string) => string, resources: Record<string, string>): Preset {
  return {
    selectors: { canary: services('canary'), stable: services('stable') },
    queries: {
      requests: `sum(${count('traefik_service_requests_total{{{selector}}}')})`,
      errors: `sum(${count('traefik_service_requests_total{{{selector}},code=~"5.."}')}) or vector(0)`,
      latency:
        'histogram_quantile({{quantile}}, sum by (le) (rate(traefik_service_request_duration_seconds_bucket{{{selector}}}[{{window}}])))',
      latencyBuckets: `sum by (le) (${count('traefik_service_request_duration_seconds_bucket{{{selector}}}')})`,
      ...resources,
    },
  };
}
