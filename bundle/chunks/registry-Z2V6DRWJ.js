// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a,b,c,d,e,f,g,h,i,j,k,l,m,n}from"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{b as MIN_BARE_SECRET,a as REDACTED,j as clearRegisteredSecrets,c as formsOf,n as joinRedacted,k as redact,l as redactDeep,m as redactedJson,e as registerBasicAuth,f as registerBearer,g as registerHeaderValue,i as registerProxyEnv,d as registerSecret,h as registerUrlSecrets};
