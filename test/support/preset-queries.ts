import { PRESETS_BY_NAME } from '../../src/analysis/presets.js';
import { queryTargetOf, renderQuery, type QueryTarget, type Side } from '../../src/analysis/promql-template.js';
import { targetNames } from '../../src/policy/policy.js';

/** checkout in shop with the default names: the query target most tests render for. */
export const CHECKOUT_TARGET: QueryTarget = queryTargetOf('shop', targetNames('checkout', {}));

/** The ingress-nginx preset's query for checkout in shop, rendered as a rollout sends it. */
export function checkoutQuery(name: 'errors' | 'requests', side: Side, window = '1m'): string {
  const nginx = PRESETS_BY_NAME['ingress-nginx'];
  const target = CHECKOUT_TARGET;
  return renderQuery(nginx.queries[name] ?? '', target, { side, selector: nginx.selectors[side], windowPromQL: window });
}
