// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{c as a,d as b,e as c,f as d,g as e}from"./chunk-S4FYGE4B.js";import"./chunk-H66ZTXUG.js";import"./chunk-43I3GHET.js";import"./chunk-MJUGEI7Y.js";import"./chunk-3I2L6QDJ.js";import"./chunk-2O3WQYU7.js";import"./chunk-VNYTDEDI.js";import"./chunk-EG3WACYS.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{b as DEFAULT_EVALUATION_DELAY_MS,a as DEFAULT_POLICY_PATH,e as loadPolicy,c as merge,d as parsePolicy};
