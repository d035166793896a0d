// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b}from"./chunk-LKCXNW2L.js";import"./chunk-W2IO2P5G.js";import"./chunk-GTA25Q6X.js";import"./chunk-LJ5LQJ7L.js";export{a as EVENT_COMPONENT,b as recordEvent};
