// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b,c,d,e}from"./chunk-PFNGJTSN.js";import"./chunk-H66ZTXUG.js";import"./chunk-X3YDM2IM.js";import"./chunk-EQVJIJCJ.js";import"./chunk-3I2L6QDJ.js";import"./chunk-LJ5LQJ7L.js";export{b as DEFAULT_EVALUATION_DELAY_MS,a as DEFAULT_POLICY_PATH,e as loadPolicy,c as merge,d as parsePolicy};
