// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a as n}from"./chunk-QDGRYPNW.js";function i(r,d){return{pre:e=>(e.setHeaderParam(r,d),n(e)),post:e=>n(e)}}function l(r,d,e){let t=i(r,d),a=e?.middleware||[];return{...e,middleware:a.concat(t),middlewareMergeStrategy:"append"}}export{l as a};
