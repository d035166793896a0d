import type { Preset } from '../preset.js';

// Envoy Gateway: Envoy's upstream cluster statistics, one cluster per backend Service.
//
// Envoy Gateway names a route rule's cluster `httproute/<ns>/<route>/rule/<n>` and by default puts
// every backendRef of the rule in that one cluster (one locality per backend), so the cluster's
// statistics cannot tell stable from canary. With `EnvoyProxy.spec.mergeBackends` (v1.9.0+), a
// backendRef that is safe to share gets its own cluster named after the Service,
// `service/<ns>/<name>/<port>/<protocol>` (internal/gatewayapi/helpers.go irBackendClusterName),
// and the rule becomes Envoy weighted_clusters across them: exactly one cluster per side. That is
// the layout this preset reads; docs/presets.md says what else it needs and cites the sources.
//
// Envoy's Prometheus output (default tag extraction): `envoy_cluster_upstream_rq_xx` per response
// class (`envoy_response_code_class` "2", "4", "5"), `envoy_cluster_upstream_rq_time` histogram in
// MILLISECONDS, both labelled `envoy_cluster_name`. Requests are counted as final responses (the
// sum of every class), not `upstream_rq_total`, which also counts retried attempts: errors and
// requests then come from one counter family. The Kubernetes `namespace` label of these series is
// the proxy's (envoy-gateway-system), so the application's namespace is matched inside the cluster
// name, never as a label. Counters are per Envoy pod: always summed.

/** Envoy's histogram buckets are in milliseconds: 1000 to the second. */
export const ENVOY_BUCKETS_PER_SECOND = 1000;

/**
 * `service/<ns>/<svc>/<port>` with an optional `/<protocol>` (lower-cased: http, http2, https, grpc, grpc-web, …). Namespaces and Service names are
 * DNS labels ([a-z0-9-]), so the values need no regex escaping, and PromQL anchors the match:
 * `checkout` never matches `checkout-canary`'s cluster.
 */
function cluster(service: string): string {
  return `envoy_cluster_name=~"service/{{namespace}}/{{${service}}}/[0-9]+(/[a-z0-9-]+)?"`;
}

export function envoyGatewayPreset(count: (series: string) => string, resources: Record<string, string>): Preset {
  return {
    selectors: { canary: cluster('canaryService'), stable: cluster('stableService') },
    latencyBucketsPerSecond: ENVOY_BUCKETS_PER_SECOND,
    queries: {
      requests: `sum(${count('envoy_cluster_upstream_rq_xx{{{selector}}}')})`,
      // `or vector(0)`: no class-5 series in the window means no 5xx, not "no data".
      errors: `sum(${count('envoy_cluster_upstream_rq_xx{{{selector}},envoy_response_code_class="5"}')}) or vector(0)`,
      // Milliseconds to seconds: the threshold judge compares this with limits in seconds.
      latency: 'histogram_quantile({{quantile}}, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{{{selector}}}[{{window}}]))) / 1000',
      // `le` stays in milliseconds here; the preset's latencyBucketsPerSecond converts it for the judges.
      latencyBuckets: `sum by (le) (${count('envoy_cluster_upstream_rq_time_bucket{{{selector}}}')})`,
      ...resources,
    },
  };
}
