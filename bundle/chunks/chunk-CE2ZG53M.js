// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
function i(r){return r.ours.every(e=>(e.weight??0)===0&&e.overrides.length===0)}var o=class extends Error{constructor(t,s){super(`the canary route ${t} was stopped (${s}) since this rollout last looked; traffic is left to that stop`);this.route=t;this.by=s;this.name="StopRequestedError"}route;by},n=class extends Error{constructor(t){super("the rollout record was changed by someone else");this.current=t;this.name="StateConflictError"}current};export{i as a,o as b,n as c};
