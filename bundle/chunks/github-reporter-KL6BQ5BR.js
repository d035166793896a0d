// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{e as a,f as b,g as c,h as d,i as e,j as f,k as g}from"./chunk-QPZY3ASA.js";import"./chunk-VYDRZ3HE.js";import"./chunk-YSXFSMAV.js";import"./chunk-35WDTOP4.js";import"./chunk-3I2L6QDJ.js";import"./chunk-2O3WQYU7.js";import"./chunk-VNYTDEDI.js";import"./chunk-EG3WACYS.js";import"./chunk-MVAEWVNU.js";import"./chunk-A6OUG57B.js";export{d as GitHubReporter,f as charts,b as escapeData,c as escapeProperty,a as githubReporterFromEnv,g as jobSummary,e as outputLine};
