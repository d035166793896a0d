// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
function o(t){return{emit:e=>t.forEach(r=>r.emit(e)),close:async()=>{for(let e of t)await e.close?.()}}}export{o as a};
