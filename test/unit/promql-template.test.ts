import { describe, expect, it } from 'vitest';
import { PRESETS_BY_NAME, gappedSeries, windowCount } from '../../src/analysis/presets.js';
import { escapeLabelValue, escapeRegexValue, renderQuery, unknownPlaceholders } from '../../src/analysis/promql-template.js';
import { CHECKOUT_TARGET } from '../support/preset-queries.js';

const target = CHECKOUT_TARGET;
const nginx = PRESETS_BY_NAME['ingress-nginx'];

describe('PromQL templates', () => {
  it('renders the ingress-nginx error count for each side using the canary label only', () => {
    const opts = { windowPromQL: '1m' };
    // Counted over the window per series (windowCount), summed over controller pods.
    const counted = (series: string) => windowCount(series).replaceAll('{{window}}', '1m');
    // A series stale at the window's start makes the request count NaN: the window is not counted.
    const gapped = (series: string) => gappedSeries(series).replaceAll('{{window}}', '1m');
    expect(renderQuery(nginx.queries['errors'] ?? '', target, { ...opts, side: 'canary', selector: nginx.selectors.canary })).toBe(
      `sum(${counted('nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary!="",status=~"5.."}')}) or vector(0)`,
    );
    expect(renderQuery(nginx.queries['requests'] ?? '', target, { ...opts, side: 'stable', selector: nginx.selectors.stable })).toBe(
      `sum(${counted('nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary=""}')}) + ((count(${gapped('nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary=""}')}) * NaN) or vector(0))`,
    );
  });

  it('computes P95 from histogram buckets, not from a mean', () => {
    const q = renderQuery(nginx.queries['latency'] ?? '', target, { side: 'canary', selector: nginx.selectors.canary, windowPromQL: '2m', quantile: 0.95 });
    expect(q).toBe(
      'histogram_quantile(0.95, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{namespace="shop",ingress="checkout",canary!=""}[2m])))',
    );
    expect(q).not.toContain('_sum');
  });

  it('keeps the stable pod regex from matching canary pods', () => {
    const stable = renderQuery('{{podRegex}}', target, { side: 'stable', selector: '', windowPromQL: '1m' });
    const canary = renderQuery('{{podRegex}}', target, { side: 'canary', selector: '', windowPromQL: '1m' });
    // PromQL regexes are fully anchored.
    const anchored = (re: string) => new RegExp(`^(?:${re})$`);
    expect(anchored(stable).test('checkout-7d9f8c6b5-x2k4p')).toBe(true);
    expect(anchored(stable).test('checkout-canary-5c8d7f9b4-q8w3n')).toBe(false);
    expect(anchored(canary).test('checkout-canary-5c8d7f9b4-q8w3n')).toBe(true);
  });

  it('escapes label values so a name cannot change the query', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const hostile = { ...target, namespace: 'shop"} or vector(1) #' };
    const q = renderQuery('x{namespace="{{namespace}}"}', hostile, { side: 'canary', selector: '', windowPromQL: '1m' });
    expect(q).toBe('x{namespace="shop\\"} or vector(1) #"}');
    expect(escapeRegexValue('web.v2')).toBe('web\\\\.v2');
  });

  it('reports placeholders it does not know', () => {
    expect(unknownPlaceholders('x{a="{{namespace}}",b="{{nmespace}}"}')).toEqual(['nmespace']);
  });
});
