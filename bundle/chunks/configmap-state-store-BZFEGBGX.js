// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b,c,d,e,f}from"./chunk-5DXDF3IA.js";import"./chunk-74AE5ULU.js";import"./chunk-KT4CQ3WU.js";import"./chunk-EQVJIJCJ.js";import"./chunk-W2IO2P5G.js";import"./chunk-GTA25Q6X.js";import"./chunk-LJ5LQJ7L.js";export{f as ConfigMapStateStore,d as CorruptRecordError,b as MAX_RECORD_BYTES,a as RECORD_KEY,e as serializeRecord,c as stateConfigMapName};
