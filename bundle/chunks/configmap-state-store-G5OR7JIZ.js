// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b,c,d,e,f,g}from"./chunk-JDFESCRU.js";import"./chunk-CE2ZG53M.js";import"./chunk-QQVMY5QQ.js";import"./chunk-QDGRYPNW.js";import"./chunk-2O3WQYU7.js";import"./chunk-TWJ2TJCE.js";import"./chunk-VNYTDEDI.js";import"./chunk-EG3WACYS.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{g as ConfigMapStateStore,d as CorruptRecordError,b as MAX_RECORD_BYTES,a as RECORD_KEY,f as parseRecordText,e as serializeRecord,c as stateConfigMapName};
