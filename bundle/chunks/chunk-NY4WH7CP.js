// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
var t=new Set;function r(e){return t.add(e),()=>{t.delete(e)}}async function n(e){let i;await Promise.race([Promise.allSettled([...t].map(o=>o())),new Promise(o=>{i=setTimeout(o,e)})]),clearTimeout(i)}export{r as a,n as b};
