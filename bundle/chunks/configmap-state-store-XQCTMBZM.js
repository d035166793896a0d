// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b,c,d,e,f}from"./chunk-LAMKDGCU.js";import"./chunk-CE2ZG53M.js";import"./chunk-QQVMY5QQ.js";import"./chunk-O5T5IJLN.js";import"./chunk-IIUASIEV.js";import"./chunk-TWJ2TJCE.js";import"./chunk-KOOLRUAH.js";import"./chunk-MNV4KU6A.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{f as ConfigMapStateStore,d as CorruptRecordError,b as MAX_RECORD_BYTES,a as RECORD_KEY,e as serializeRecord,c as stateConfigMapName};
