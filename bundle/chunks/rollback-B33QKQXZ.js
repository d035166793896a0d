// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b}from"./chunk-XSKWAEFV.js";import"./chunk-F55A7I22.js";import"./chunk-WPDH45JR.js";import"./chunk-QYW2TPPF.js";import"./chunk-FRRGKS7W.js";import"./chunk-RNYBX4TO.js";import"./chunk-PARPHN3L.js";import"./chunk-CE2ZG53M.js";import"./chunk-QQVMY5QQ.js";import"./chunk-QDGRYPNW.js";import"./chunk-TWJ2TJCE.js";import"./chunk-VNYTDEDI.js";import"./chunk-EG3WACYS.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{a as parseReason,b as rollbackFromFlags};
