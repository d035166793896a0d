// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
function o(r,i){if(r===null)return"n/a";if(Number.isNaN(r))return"NaN";if(!Number.isFinite(r))return r>0?"+Inf":"-Inf";switch(i){case"ratio":return`${n(r*100,r*100<10?2:1)}%`;case"seconds":return r<1?`${n(r*1e3,0)}ms`:`${n(r,2)}s`;case"bytes":{let s=["B","KiB","MiB","GiB","TiB"],e=r,t=0;for(;Math.abs(e)>=1024&&t<s.length-1;)e/=1024,t+=1;return`${n(e,t===0?0:1)} ${s[t]}`}case"cores":return`${n(r,3)} cores`;case"count":return`${n(r,r<100?1:0)}`}}function n(r,i){return String(Number(r.toFixed(i)))}export{o as a};
