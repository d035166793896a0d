// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
function t(r,e){return`${r}-${new Date(e).toISOString().replace(/[-:]/g,"").replace(/\.\d+Z$/,"Z")}`}export{t as a};
