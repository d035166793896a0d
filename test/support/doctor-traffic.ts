import { NGINX_DURATION_BUCKETS, type Sample } from '../../scripts/traffic-model.js';
import type { ScrapeSource } from '../../scripts/openmetrics.js';

// Stable traffic in ingress-nginx's exact series, simple enough to state what doctor must find:
// steady requests, a fixed share of 5xx, every request as slow as `latency`. The knobs are the
// ones doctor checks: how often it was scraped, codes or classes, which buckets exist.

export interface StableTrafficSpec {
  namespace: string;
  ingress?: string;
  service?: string;
  /** Seconds since the epoch, inclusive, on whole seconds. */
  from: number;
  to: number;
  scrapeSeconds: number;
  rps?: number;
  errorRate?: number;
  /** ingress-nginx's --report-status-classes: "2xx"/"5xx" instead of "200"/"503". */
  statusClasses?: boolean;
  buckets?: readonly number[];
  latencySeconds?: number;
}

export function stableTraffic(spec: StableTrafficSpec): ScrapeSource {
  const { namespace, from, to, scrapeSeconds } = spec;
  const ingress = spec.ingress ?? 'checkout';
  const service = spec.service ?? 'checkout';
  const rps = spec.rps ?? 20;
  const errorRate = spec.errorRate ?? 0.01;
  const buckets = [...(spec.buckets ?? NGINX_DURATION_BUCKETS), Number.POSITIVE_INFINITY];
  const latency = spec.latencySeconds ?? 0.2;
  const base = { namespace, ingress, service, canary: '', controller_pod: 'ingress-nginx-controller-0' };
  const [ok, bad] = spec.statusClasses ? ['2xx', '5xx'] : ['200', '503'];
  return {
    *scrapes() {
      for (let t = from; t <= to; t += scrapeSeconds) {
        const total = rps * (t - from);
        const errors = Math.round(total * errorRate);
        const samples: Sample[] = [
          { family: 'nginx_ingress_controller_requests', name: 'nginx_ingress_controller_requests', labels: { ...base, status: ok }, value: total - errors },
          { family: 'nginx_ingress_controller_requests', name: 'nginx_ingress_controller_requests', labels: { ...base, status: bad }, value: errors },
          ...buckets.map((le) => ({
            family: 'nginx_ingress_controller_request_duration_seconds' as const,
            name: 'nginx_ingress_controller_request_duration_seconds_bucket',
            labels: { ...base, le: Number.isFinite(le) ? String(le) : '+Inf' },
            value: le >= latency ? total : 0,
          })),
          { family: 'nginx_ingress_controller_request_duration_seconds', name: 'nginx_ingress_controller_request_duration_seconds_count', labels: base, value: total },
          { family: 'nginx_ingress_controller_request_duration_seconds', name: 'nginx_ingress_controller_request_duration_seconds_sum', labels: base, value: total * latency },
        ];
        yield { at: new Date(t * 1000), samples };
      }
    },
  };
}
