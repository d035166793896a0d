// The PromQL a terminal prints with a check's evidence (issue 15, class 7): the presets' window
// counts are about 1 KB each, so the terminal shows what a query counts and where to get it whole.

import { describe, expect, it } from 'vitest';
import { abridgeQuery } from '../../src/analysis/abridge.js';
import { checkoutQuery } from '../support/preset-queries.js';

describe('abridged PromQL', () => {
  it('shows the series and the window of a window count, with the full length and where to get it', () => {
    const full = checkoutQuery('errors', 'canary', '1m');
    expect(full.length).toBeGreaterThan(500);
    const short = abridgeQuery(full);
    expect(short).toBe(
      `sum(window count of nginx_ingress_controller_requests{namespace="shop",ingress="checkout",canary!="",status=~"5.."} over 1m)  [${full.length} chars; full PromQL with --verbose or -o json]`,
    );
    expect(short.length).toBeLessThan(200);
  });

  it('leaves short queries as they are', () => {
    expect(abridgeQuery('sum(rate(x[1m]))')).toBe('sum(rate(x[1m]))');
  });
});
