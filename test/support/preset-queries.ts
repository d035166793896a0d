import { PRESETS_BY_NAME } from '../../src/analysis/presets.js';
import { renderQuery, type Side } from '../../src/analysis/promql-template.js';

/** The ingress-nginx preset's query for checkout in shop, rendered as a rollout sends it. */
export function checkoutQuery(name: 'errors' | 'requests', side: Side, window = '1m'): string {
  const nginx = PRESETS_BY_NAME['ingress-nginx'];
  const target = {
    namespace: 'shop',
    ingress: 'checkout',
    stableService: 'checkout',
    canaryService: 'checkout-canary',
    stableDeployment: 'checkout',
    canaryDeployment: 'checkout-canary',
  };
  return renderQuery(nginx.queries[name] ?? '', target, { side, selector: nginx.selectors[side], windowPromQL: window });
}
