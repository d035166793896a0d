import type { PresetName } from '../policy/schema.js';
import { envoyGatewayPreset } from './presets/envoy-gateway.js';
import { traefikPreset } from './presets/traefik.js';

// Query presets. Both compute error rate from counts (errors / requests over the window) so the
// threshold and sequential judges see the same evidence, and P95 from histogram buckets, never
// from _sum/_count (a mean hides the tail; see Flagger's NGINX check in REFERENCE.md).

export type { Preset } from './preset.js';
import type { Preset } from './preset.js';

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
 * How far back a window's count looks for a counter's last real sample before the window. A series
 * with no sample in this look-back is counted as born in the window (from zero).
 */
export const COUNT_LOOKBACK = '1h';

/**
 * Requests counted in the window, exactly: the counter's rise from its last real sample before the
 * window (p) to its last sample in it, per series. p is `last_over_time(x[1h] offset W)`, which
 * skips stale markers: `x offset W` finds nothing when the scrapes around the window's start failed
 * (Prometheus marks the series stale), and the count then fell back to the whole counter (252 canary
 * requests for a 5 s window that carried 62). increase() would extrapolate, and it never counts a
 * series' first sample — the canary's series are born during the rollout (a new label value), so
 * its first window came out short (74 of 89 requests). Only a series with no real sample in the
 * look-back before the window is born in it and counts from zero.
 *
 * The difference is only the count when the counter did not reset anywhere from p on. resets()
 * over the window sees the samples inside it, not the step from p to the first of them, and a
 * controller pod that restarted between the two has often climbed past p again by the window's
 * end (s - p positive but short by p; the corpus had a 25% step read as 16%). A counter only falls
 * on a reset, so with no reset inside the window the first sample in it is the window's minimum,
 * and p was followed by a reset exactly when that minimum is below p. Then the counter started
 * from zero after p and every sample since is in the window: the count is the current value, as
 * for a series born in the window. Only a reset between two samples inside the window falls back
 * to increase(), which adds the counter's fall back but extrapolates the edges.
 */
export function windowCount(series: string): string {
  const before = lastBefore(series);
  const resetInside = `(resets(${series}[{{window}}]) > 0)`;
  const resetAfterBefore = `(min_over_time(${series}[{{window}}]) < ${before})`;
  return `((${series} - ${before}) unless ${resetInside} unless ${resetAfterBefore}) or (${series} unless ${resetInside}) or increase(${series}[{{window}}])`;
}

function lastBefore(series: string): string {
  return `last_over_time(${series}[${COUNT_LOOKBACK}] offset {{window}})`;
}

/**
 * Series the window cannot count: a real sample before the window, none at its start (failed
 * scrapes: the series was stale), a sample now, and no reset since. Their rise from p includes the
 * requests of the gap before the window, so the count would be too large by an unknown amount.
 */
export function gappedSeries(series: string): string {
  const before = lastBefore(series);
  return `(((${before} unless ${series} offset {{window}}) and ${series}) unless (min_over_time(${series}[{{window}}]) < ${before}))`;
}

/** 0, or NaN when any series has a gap at the window's start: added to a count, it makes the window uncountable. */
function uncountable(series: string): string {
  return `((count(${gappedSeries(series)}) * NaN) or vector(0))`;
}

/** A count over the window, NaN when it cannot be counted (see gappedSeries); `by` sums per label. */
function counted(series: string, by = ''): string {
  return by ? `sum by (${by}) (${windowCount(series)}) + on() group_left() ${uncountable(series)}` : `sum(${windowCount(series)}) + ${uncountable(series)}`;
}

export const PRESETS_BY_NAME: Record<PresetName, Preset> = {
  'ingress-nginx': {
    selectors: { canary: 'canary!=""', stable: 'canary=""' },
    queries: {
      requests: counted(`nginx_ingress_controller_requests{${NGINX_SELECTOR}}`),
      countingGaps: `count(${gappedSeries(`nginx_ingress_controller_requests{${NGINX_SELECTOR}}`)})`,
      // `or vector(0)`: a window with no 5xx has no error series at all, and that means zero
      // errors, not "no data"; traffic volume is judged from the requests query.
      errors: `sum(${windowCount(`nginx_ingress_controller_requests{${NGINX_SELECTOR},status=~"5.."}`)}) or vector(0)`,
      latency: `histogram_quantile({{quantile}}, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{${NGINX_SELECTOR}}[{{window}}])))`,
      // Bucket counts, for the sequential judge: it compares how many requests were slow.
      latencyBuckets: counted(`nginx_ingress_controller_request_duration_seconds_bucket{${NGINX_SELECTOR}}`, 'le'),
      ...RESOURCE_QUERIES,
    },
  },
  'app-metrics': {
    // prom-client style metrics scraped per Service: the `service` label names the Service
    // that selected the pod, which differs between stable and canary.
    selectors: { canary: 'service="{{canaryService}}"', stable: 'service="{{stableService}}"' },
    queries: {
      requests: counted('http_requests_total{namespace="{{namespace}}",{{selector}}}'),
      countingGaps: `count(${gappedSeries('http_requests_total{namespace="{{namespace}}",{{selector}}}')})`,
      errors: `sum(${windowCount('http_requests_total{namespace="{{namespace}}",{{selector}},status_code=~"5.."}')}) or vector(0)`,
      latency:
        'histogram_quantile({{quantile}}, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{namespace}}",{{selector}}}[{{window}}])))',
      latencyBuckets: counted('http_request_duration_seconds_bucket{namespace="{{namespace}}",{{selector}}}', 'le'),
      ...RESOURCE_QUERIES,
    },
  },
  'envoy-gateway': envoyGatewayPreset(windowCount, RESOURCE_QUERIES),
  traefik: traefikPreset(windowCount, RESOURCE_QUERIES),
};
