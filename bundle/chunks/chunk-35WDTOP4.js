// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{k as i}from"./chunk-MVAEWVNU.js";import{appendFileSync as d,writeFileSync as a}from"node:fs";function c(e){return{write:t=>{e.write(t)}}}function s(e,t){d(e,t)}function p(e,t,r){a(e,t,r===void 0?void 0:{mode:r})}var o=!1;function w(){if(!o){o=!0;for(let e of[process.stdout,process.stderr]){let t=e.write.bind(e);e.write=((r,...n)=>typeof r=="string"?t(i(r),...n):r instanceof Uint8Array?t(i(Buffer.from(r).toString("utf8")),...n):t(r,...n))}}}export{c as a,s as b,p as c,w as d};
