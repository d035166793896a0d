// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a}from"./chunk-ENISNTAE.js";import"./chunk-WPDH45JR.js";import"./chunk-3I2L6QDJ.js";import"./chunk-CE2ZG53M.js";import"./chunk-QQVMY5QQ.js";import"./chunk-QDGRYPNW.js";import"./chunk-TWJ2TJCE.js";import"./chunk-VNYTDEDI.js";import"./chunk-EG3WACYS.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{a as DeploymentWorkloads};
