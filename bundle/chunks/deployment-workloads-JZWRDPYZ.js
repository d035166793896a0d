// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a}from"./chunk-4LXX4LAC.js";import"./chunk-26Z2HRV6.js";import"./chunk-3I2L6QDJ.js";import"./chunk-Y3QSQII4.js";import"./chunk-2KYK3LOJ.js";import"./chunk-KOOLRUAH.js";import"./chunk-MNV4KU6A.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{a as DeploymentWorkloads};
