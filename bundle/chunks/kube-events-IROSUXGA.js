// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b}from"./chunk-RJ2YJ3WO.js";import"./chunk-F6K3Z5GV.js";import"./chunk-2KYK3LOJ.js";import"./chunk-KOOLRUAH.js";import"./chunk-MNV4KU6A.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{a as EVENT_COMPONENT,b as recordEvent};
