// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
function n(r,e){return{stableDeployment:e.stableDeployment??r,stableService:e.stableService??r,stableIngress:e.stableIngress??r,canaryDeployment:e.canaryDeployment??`${r}-canary`,canaryService:e.canaryService??`${r}-canary`,canaryIngress:e.canaryIngress??`${r}-canary`,...e.container!==void 0?{container:e.container}:{},...e.canaryReplicas!==void 0?{canaryReplicas:e.canaryReplicas}:{},...e.headerRouting!==void 0?{headerRouting:e.headerRouting}:{}}}function a(r){return r.steps.reduce((e,t)=>e+Math.max(1,Math.floor(t.durationMs/r.intervalMs)),0)}export{n as a,a as b};
