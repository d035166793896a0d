// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
var r="app.kubernetes.io/managed-by",t="canary-cli",e="canary-cli.dev/target",i="canary-cli.dev/rollout-id";function c(n){return{[r]:t,[e]:n}}function s(n){return`${r}=${t},${e}=${n}`}function a(n,o){return n?.[r]===t&&n[e]===o}var p="canary-cli.dev/stop";export{r as a,t as b,i as c,c as d,s as e,a as f,p as g};
