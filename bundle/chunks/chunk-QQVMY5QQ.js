// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
var t="app.kubernetes.io/managed-by",n="canary-cli",e="canary-cli.dev/target",c="canary-cli.dev/rollout-id";function i(r){return{[t]:n,[e]:r}}function s(r){return`${t}=${n},${e}=${r}`}function a(r,o){return r?.[t]===n&&r[e]===o}var A="canary-cli.dev/stop",p="canary-cli.dev/holder",N="canary-cli.dev/stable-restored-by";export{t as a,n as b,e as c,c as d,i as e,s as f,a as g,A as h,p as i,N as j};
