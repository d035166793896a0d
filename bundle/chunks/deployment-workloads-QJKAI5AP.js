// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a}from"./chunk-QRVKAIGF.js";import"./chunk-DORMACDI.js";import"./chunk-3I2L6QDJ.js";import"./chunk-W2IO2P5G.js";import"./chunk-GTA25Q6X.js";import"./chunk-LJ5LQJ7L.js";export{a as DeploymentWorkloads};
