// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b}from"./chunk-4LZFC6U7.js";import"./chunk-O5T5IJLN.js";import"./chunk-TWJ2TJCE.js";import"./chunk-KOOLRUAH.js";import"./chunk-MNV4KU6A.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{a as EVENT_COMPONENT,b as recordEvent};
