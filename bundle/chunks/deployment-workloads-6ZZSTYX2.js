// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a}from"./chunk-7X23USZO.js";import"./chunk-SUZ7NLUC.js";import"./chunk-3I2L6QDJ.js";import"./chunk-PESNLWLL.js";import"./chunk-QQVMY5QQ.js";import"./chunk-F6K3Z5GV.js";import"./chunk-2KYK3LOJ.js";import"./chunk-KOOLRUAH.js";import"./chunk-MNV4KU6A.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{a as DeploymentWorkloads};
