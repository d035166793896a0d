// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{existsSync as o}from"node:fs";import{dirname as n,join as i}from"node:path";import{fileURLToPath as a}from"node:url";var r;function p(){if(r)return r;let t=n(a(import.meta.url));for(;!o(i(t,"package.json"));){let e=n(t);if(e===t)throw new Error("canary: cannot find its package.json; is the install complete?");t=e}return r=t,t}var f=(...t)=>i(p(),...t);export{f as a};
