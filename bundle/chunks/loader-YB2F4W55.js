// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{b as a,c as b,d as c,e as d,f as e}from"./chunk-HPO3EKHN.js";import"./chunk-MJUGEI7Y.js";import"./chunk-H66ZTXUG.js";import"./chunk-6O2H3VMK.js";import"./chunk-3I2L6QDJ.js";import"./chunk-IIUASIEV.js";import"./chunk-KOOLRUAH.js";import"./chunk-MNV4KU6A.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{b as DEFAULT_EVALUATION_DELAY_MS,a as DEFAULT_POLICY_PATH,e as loadPolicy,c as merge,d as parsePolicy};
