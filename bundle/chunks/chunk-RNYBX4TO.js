// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
var s={now:()=>Date.now(),sleep:(n,e)=>new Promise(t=>{if(e?.aborted)return t();let r=setTimeout(o,n);function o(){clearTimeout(r),e?.removeEventListener("abort",o),t()}e?.addEventListener("abort",o,{once:!0})})},i=class{constructor(e){this.current=e}current;now(){return this.current}async sleep(e,t){t?.aborted||(this.current+=e,await new Promise(r=>setImmediate(r)))}};export{s as a,i as b};
