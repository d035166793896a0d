// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b}from"./chunk-JC43RW6P.js";import"./chunk-QDGRYPNW.js";import"./chunk-TWJ2TJCE.js";import"./chunk-VNYTDEDI.js";import"./chunk-EG3WACYS.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{a as EVENT_COMPONENT,b as recordEvent};
