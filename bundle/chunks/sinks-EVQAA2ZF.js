// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b,c,d}from"./chunk-35WDTOP4.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{b as appendRedacted,d as guardProcessOutput,a as textSink,c as writeRedacted};
