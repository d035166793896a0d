// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{g as e}from"./chunk-LJ5LQJ7L.js";function o(t){if(t===void 0||t==="text")return"text";if(t==="json")return"json";throw e(`--output: expected "text" or "json", got "${t}"`)}function a(t){if(!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(t))throw e(`target name: expected a Kubernetes name like "checkout" (lower-case letters, digits and "-"), got "${t}"`);return t}function s(t){let n=t??"default";if(!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n))throw e(`--namespace: expected a Kubernetes namespace name, got "${n}"`);return n}export{o as a,a as b,s as c};
