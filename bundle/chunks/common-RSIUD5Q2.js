// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
import{a as d,b as e,c as f,d as g,e as h,f as i}from"./chunk-C2RMNZT2.js";import"./chunk-FW3HHV2Q.js";import{a,b,c}from"./chunk-N35O5XS3.js";import"./chunk-NRJUHYKB.js";import"./chunk-VYDRZ3HE.js";import"./chunk-JCVTWLTA.js";import"./chunk-XKKFA3DL.js";import"./chunk-YSXFSMAV.js";import"./chunk-EQVJIJCJ.js";import"./chunk-3I2L6QDJ.js";import"./chunk-GTA25Q6X.js";import"./chunk-LJ5LQJ7L.js";export{i as makeIncidentSinks,h as makeReporter,d as parseImage,c as parseNamespace,g as parseOnCancel,a as parseOutput,b as parseTargetName,e as parseTime,f as startedBy};
