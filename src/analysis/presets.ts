import type { PresetName } from '../policy/schema.js';
import { envoyGatewayPreset } from './presets/envoy-gateway.js';
import { traefikPreset } from './presets/traefik.js';

// Query presets. Both compute error rate from counts (errors / requests over the window) so the
// threshold and sequential judges see the same evidence, and P95 from histogram buckets, never
// from _sum/_count (a mean hides the tail; see Flagger's NGINX check in REFERENCE.md).

export interface Preset {
  /** Label matchers that tell this side's traffic apart. */
  selectors: { canary: string; stable: string };
  queries: Record<string, string>;
  /**
   * How many of the histogram's units make one second, when the data plane's histogram is not in
   * seconds: a `latencyBuckets` answer's `le` ÷ this = seconds (Envoy's milliseconds: 1000).
   * Absent means 1.
   */
  latencyBucketsPerSecond?: number;
}

// Per pod, averaged over the side's pods: the canary usually runs fewer replicas than stable,
// so totals would compare one pod with many.
const RESOURCE_QUERIES = {
  memory:
    'avg(sum by (pod) (container_memory_working_set_bytes{namespace="{{namespace}}",pod=~"{{podRegex}}",container!="",container!="POD"}))',
  cpu: 'avg(sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="{{namespace}}",pod=~"{{podRegex}}",container!="",container!="POD"}[{{window}}])))',
};

// ingress-nginx serves canary requests in the stable Ingress's location, so `ingress` and
// `service` carry the stable names for both sides; only the `canary` label (the alternative
// upstream, empty for stable) tells them apart. Counters are per controller pod: always sum.
const NGINX_SELECTOR = 'namespace="{{namespace}}",ingress="{{ingress}}",{{selector}}';

/**
 * Requests counted in the window, exactly: the counter's rise between the last sample before the
 * window (p, what `offset` finds) and the last sample in it, per series. increase() would
 * extrapolate, and it never counts a series' first sample — the canary's series are born during
 * the rollout (a new label value), so its first window came out short (74 of 89 requests).
 *
 * The difference is only the count when the counter did not reset anywhere from p on. resets()
 * over the window sees the samples inside it, not the step from p to the first of them, and a
 * controller pod that restarted between the two has often climbed past p again by the window's
 * end (s - p positive but short by p; the corpus had a 25% step read as 16%). A counter only falls
 * on a reset, so with no reset inside the window the first sample in it is the window's minimum,
 * and p was followed by a reset exactly when that minimum is below p. Then the counter started
 * from zero after p and every sample since is in the window: the count is the current value, as
 * for a series born in the window (no p at all). Only a reset between two samples inside the
 * window falls back to increase(), which adds the counter's fall back but extrapolates the edges.
 * (With Prometheus 2's closed ranges a p exactly at the window's start is inside the range, so a
 * reset right after it counts as inside: increase(), still near, never s - p.)
 */
export function windowCount(series: string): string {
  const before = `${series} offset {{window}}`;
  const resetInside = `(resets(${series}[{{window}}]) > 0)`;
  const resetAfterBefore = `(min_over_time(${series}[{{window}}]) < ${before})`;
  return `((${series} - ${before}) unless ${resetInside} unless ${resetAfterBefore}) or (${series} unless ${resetInside}) or increase(${series}[{{window}}])`;
}

export const PRESETS_BY_NAME: Record<PresetName, Preset> = {
  'ingress-nginx': {
    selectors: { canary: 'canary!=""', stable: 'canary=""' },
    queries: {
      requests: `sum(${windowCount(`nginx_ingress_controller_requests{${NGINX_SELECTOR}}`)})`,
      // `or vector(0)`: a window with no 5xx has no error series at all, and that means zero
      // errors, not "no data"; traffic volume is judged from the requests query.
      errors: `sum(${windowCount(`nginx_ingress_controller_requests{${NGINX_SELECTOR},status=~"5.."}`)}) or vector(0)`,
      latency: `histogram_quantile({{quantile}}, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{${NGINX_SELECTOR}}[{{window}}])))`,
      // Bucket counts, for the sequential judge: it compares how many requests were slow.
      latencyBuckets: `sum by (le) (${windowCount(`nginx_ingress_controller_request_duration_seconds_bucket{${NGINX_SELECTOR}}`)})`,
      ...RESOURCE_QUERIES,
    },
  },
  'app-metrics': {
    // prom-client style metrics scraped per Service: the `service` label names the Service
    // that selected the pod, which differs between stable and canary.
    selectors: { canary: 'service="{{canaryService}}"', stable: 'service="{{stableService}}"' },
    queries: {
      requests: `sum(${windowCount('http_requests_total{namespace="{{namespace}}",{{selector}}}')})`,
      errors: `sum(${windowCount('http_requests_total{namespace="{{namespace}}",{{selector}},status_code=~"5.."}')}) or vector(0)`,
      latency:
        'histogram_quantile({{quantile}}, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{namespace}}",{{selector}}}[{{window}}])))',
      latencyBuckets: `sum by (le) (${windowCount('http_request_duration_seconds_bucket{namespace="{{namespace}}",{{selector}}}')})`,
      ...RESOURCE_QUERIES,
    },
  },
  'envoy-gateway': envoyGatewayPreset(windowCount, RESOURCE_QUERIES),
  traefik: traefikPreset(windowCount, RESOURCE_QUERIES),
};
