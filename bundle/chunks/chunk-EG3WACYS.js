// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.
import { createRequire as __canaryCreateRequire } from 'node:module';
const require = __canaryCreateRequire(import.meta.url);
var t={ok:0,unexpected:1,invalidInput:2,rolledBack:3,aborted:4,unreachable:5,rolledBackAfterPromotion:7},i=class extends Error{kind;details;constructor(n,r,o=[],a){super(r,a),this.name="CanaryError",this.kind=n,this.details=o}get exitCode(){switch(this.kind){case"invalid-input":case"recording-miss":return t.invalidInput;case"unreachable":case"query-failed":return t.unreachable;case"taken-over":return t.aborted;case"unexpected":return t.unexpected}}},s=(e,n=[])=>new i("invalid-input",e,n);function d(e){return e instanceof i?e.exitCode:t.unexpected}function c(e){return e instanceof i?e.details.length?`${e.message}
${e.details.map(n=>`  - ${n}`).join(`
`)}`:e.message:e instanceof Error?e.message:String(e)}export{t as a,i as b,s as c,d,c as e};
