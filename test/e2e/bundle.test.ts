import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, runCli } from '../support/run-cli.js';

// What each command loads, as users run it (bin/canary → bundle/). A loader hook in the child
// writes down every file Node loads; the bundler's metafile (dist/bundle-meta.json, written by
// `npm run build` beside bundle/) says which sources each chunk holds.

interface Metafile {
  outputs: Record<string, { entryPoint?: string; imports: { path: string; kind: string }[]; inputs: Record<string, unknown> }>;
}

const HOOKS = `
import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function load(url, context, next) {
  if (url.startsWith('file:')) appendFileSync(out, url + '\\n');
  return next(url, context);
}`;
const PRELOAD = `data:text/javascript,${encodeURIComponent(
  `import { register } from 'node:module';
   register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), { data: { out: process.env.CANARY_TEST_LOADED } });`,
)}`;

let meta: Metafile;
let dir: string;
beforeAll(() => {
  meta = JSON.parse(readFileSync(join(REPO, 'dist', 'bundle-meta.json'), 'utf8')) as Metafile;
  dir = mkdtempSync(join(tmpdir(), 'canary-bundle-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The sources inside the chunks a run loaded, plus the loaded files outside bundle/. */
async function loadedBy(args: string[], expectCode: number): Promise<{ sources: string[]; outside: string[] }> {
  const out = join(dir, `loaded-${args[0]}-${Math.random().toString(36).slice(2)}`);
  const run = await runCli(args, { CANARY_TEST_LOADED: out, NODE_OPTIONS: `--import=${PRELOAD}` });
  expect(run.stderr).toBe('');
  expect(run.code).toBe(expectCode);
  const files = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((u) => relative(REPO, fileURLToPath(u)));
  const outside = files.filter((f) => f !== 'bin/canary' && !f.startsWith('bundle/'));
  const sources = files.flatMap((f) => {
    const chunk = meta.outputs[f];
    if (!chunk && f.startsWith('bundle/')) throw new Error(`${f} is not in dist/bundle-meta.json: run npm run build`);
    return chunk ? Object.keys(chunk.inputs) : [];
  });
  return { sources, outside };
}

/** Every source a chunk brings with it before any import() runs: its static import closure. */
function staticClosure(entry: string): string[] {
  const start = Object.entries(meta.outputs).find(([, o]) => o.entryPoint === entry)?.[0];
  if (!start) throw new Error(`no chunk for ${entry} in dist/bundle-meta.json`);
  const seen = new Set<string>();
  const visit = (out: string) => {
    if (seen.has(out)) return;
    seen.add(out);
    for (const i of meta.outputs[out]?.imports ?? []) if (i.kind === 'import-statement' && meta.outputs[i.path]) visit(i.path);
  };
  visit(start);
  return [...seen].flatMap((o) => Object.keys(meta.outputs[o]?.inputs ?? {}));
}

const KUBE_CLIENT = /node_modules\/@kubernetes\/client-node\//;

describe('the bundled CLI', () => {
  it('is what bin/canary runs: the metafile describes exactly the files in bundle/', () => {
    const shipped = readdirSync(join(REPO, 'bundle'), { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile() && f.name.endsWith('.js'))
      .map((f) => relative(REPO, join(f.parentPath, f.name)))
      .sort();
    expect(Object.keys(meta.outputs).sort()).toEqual(shipped);
  });

  it('--help loads only bundle files, and neither the Kubernetes client nor any command', async () => {
    const { sources, outside } = await loadedBy(['--help'], 0);
    expect(outside).toEqual([]);
    expect(sources.filter((s) => KUBE_CLIENT.test(s))).toEqual([]);
    expect(sources.filter((s) => s.startsWith('src/cli/') && s !== 'src/cli/main.ts' && s !== 'src/cli/forced-exit.ts')).toEqual([]);
  });

  it('validate loads no Kubernetes client, reporter or incident sink', async () => {
    const { sources, outside } = await loadedBy(['validate', 'policies/default.yaml'], 0);
    expect(outside).toEqual([]);
    expect(sources).toContain('src/policy/loader.ts');
    expect(sources.filter((s) => KUBE_CLIENT.test(s) || s.startsWith('src/incident/sinks') || s.startsWith('src/report/'))).toEqual([]);
  });

  it('a dry-run replay loads the engine and judges but no Kubernetes client', async () => {
    const args = ['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run', '--replay', 'examples/recordings/error-regression.json'];
    const { sources, outside } = await loadedBy(args, 3);
    expect(outside).toEqual([]);
    expect(sources).toContain('src/rollout/engine.ts');
    expect(sources.filter((s) => KUBE_CLIENT.test(s) || s.startsWith('src/k8s/') && s !== 'src/k8s/memory-cluster.ts')).toEqual([]);
  });

  it('rollback starts with nothing of the judges, the GitHub reporter or the incident sinks: it imports them after its weight-0 write', () => {
    const first = staticClosure('src/cli/rollback.ts');
    expect(first.some((s) => KUBE_CLIENT.test(s))).toBe(true);
    expect(first.filter((s) => s.startsWith('src/analysis/') || s.startsWith('src/incident/') || s === 'src/report/github-reporter.ts')).toEqual([]);
  });
});
