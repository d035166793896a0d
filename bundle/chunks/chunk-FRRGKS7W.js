// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
function n(t,e){return{stableDeployment:e.stableDeployment??t,stableService:e.stableService??t,stableIngress:e.stableIngress??t,canaryDeployment:e.canaryDeployment??`${t}-canary`,canaryService:e.canaryService??`${t}-canary`,canaryIngress:e.canaryIngress??`${t}-canary`,...e.container!==void 0?{container:e.container}:{},...e.canaryReplicas!==void 0?{canaryReplicas:e.canaryReplicas}:{},...e.headerRouting!==void 0?{headerRouting:e.headerRouting}:{}}}function s(t){return t.steps.reduce((e,r)=>e+Math.max(1,Math.floor(r.durationMs/t.intervalMs)),0)}export{n as a,s as b};
