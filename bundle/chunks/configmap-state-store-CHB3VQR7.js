// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b,c,d,e,f}from"./chunk-UMTGRK64.js";import"./chunk-PESNLWLL.js";import"./chunk-QQVMY5QQ.js";import"./chunk-F6K3Z5GV.js";import"./chunk-EQVJIJCJ.js";import"./chunk-2KYK3LOJ.js";import"./chunk-KOOLRUAH.js";import"./chunk-MNV4KU6A.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{f as ConfigMapStateStore,d as CorruptRecordError,b as MAX_RECORD_BYTES,a as RECORD_KEY,e as serializeRecord,c as stateConfigMapName};
