// Builds what users run: bin/canary imports bundle/canary.js, one ES module with our sources and
// every runtime library (client-node, zod, axios, commander, chalk, ora, yaml) bundled and
// tree-shaken. Each command is a chunk loaded by main.ts's import(), so `--help` reads a few
// hundred kilobytes, not a thousand files. The output is checked in (the GitHub Action runs it
// with no install), so it must be byte-for-byte the same for the same sources and lockfile:
// a pinned esbuild, paths relative to the repository, no timestamps, chunks named by content.
//
// Usage: node dist/scripts/bundle.js        (npm run bundle; npm run build runs it after tsc)

import { build, type Metafile, type Plugin } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../src/paths.js';

const BUNDLE_DIR = 'bundle';
/** The import graph of the last build, for tests that check what each command loads (not shipped). */
const METAFILE = join('dist', 'bundle-meta.json');

// An ES module has no `require`; bundled CommonJS libraries (axios's Node build, form-data,
// node-fetch under client-node) call it for Node's built-in modules. esbuild's shim looks for a
// `require` in scope, so every output file gets one made for its own URL.
const BANNER = [
  '// canary, bundled by scripts/bundle.ts: do not edit; run `npm run bundle` and commit.',
  "import { createRequire as __canaryCreateRequire } from 'node:module';",
  'const require = __canaryCreateRequire(import.meta.url);',
].join('\n');

// client-node's index re-exports every API group, and its generated API classes extend a base
// class, which esbuild must assume has side effects: it would keep all ~60 groups and their
// request factories (about 1.5 MB) though we call five. Its modules only define things, so we
// tell esbuild so (the sideEffects: false a package.json could have said); unused modules drop out.
const PURE_PACKAGES = ['@kubernetes/client-node'];

const pureModules: Plugin = {
  name: 'pure-modules',
  setup(b) {
    const inPackage = new RegExp(`(^|/node_modules/)(${PURE_PACKAGES.map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})/`);
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'pure-modules' || args.kind === 'entry-point') return undefined;
      // Bare imports of the package, and relative imports between its own files.
      if (!PURE_PACKAGES.some((p) => args.path === p || args.path.startsWith(`${p}/`)) && !inPackage.test(args.importer)) return undefined;
      const resolved = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'pure-modules' });
      if (resolved.errors.length > 0 || !inPackage.test(resolved.path)) return undefined;
      return { path: resolved.path, sideEffects: false };
    });
  },
};

// node-fetch 2 (client-node's HTTP) imports whatwg-url, a URL implementation with a 270 kB
// Unicode table parsed at start-up, only as a fallback for runtimes without url.URL; Node has
// one, so node-fetch gets Node's own instead.
const nodeUrlForNodeFetch: Plugin = {
  name: 'node-url-for-node-fetch',
  setup(b) {
    b.onResolve({ filter: /^whatwg-url$/ }, (args) =>
      /\/node_modules\/node-fetch\//.test(args.importer) ? { path: 'whatwg-url', namespace: 'node-url' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'node-url' }, () => ({
      contents: 'module.exports = { URL: globalThis.URL, URLSearchParams: globalThis.URLSearchParams };',
      loader: 'js',
    }));
  },
};

async function main(): Promise<void> {
  const root = packageRoot();
  const outdir = join(root, BUNDLE_DIR);
  // Chunk names carry content hashes: a stale chunk left behind would be shipped and checked in.
  rmSync(outdir, { recursive: true, force: true });

  const result = await build({
    absWorkingDir: root,
    entryPoints: { canary: 'src/cli/main.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Whitespace and syntax only: identifiers stay readable in a stack trace from a user.
    minify: true,
    treeShaking: true,
    chunkNames: 'chunks/[name]-[hash]',
    banner: { js: BANNER },
    // Licence headers of the bundled libraries stay with the code they cover.
    legalComments: 'eof',
    // Native speed-ups that ws tries inside try/catch; without them it falls back to plain JS.
    external: ['bufferutil', 'utf-8-validate'],
    plugins: [pureModules, nodeUrlForNodeFetch],
    metafile: true,
    logLevel: 'warning',
  });

  writeFileSync(join(outdir, 'THIRD-PARTY-LICENSES.txt'), thirdPartyLicenses(root, result.metafile));
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, METAFILE), `${JSON.stringify(result.metafile, null, 1)}\n`);

  const files = readdirSync(outdir, { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
  const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
  console.log(`bundle: ${files.length} files, ${(bytes / 1e6).toFixed(2)} MB in ${relative(process.cwd(), outdir) || '.'}/`);
}

/** One entry per bundled package (name, version, licence text), sorted so the file is stable. */
function thirdPartyLicenses(root: string, meta: Metafile): string {
  const dirs = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m?.[1]) dirs.add(m[1]);
  }
  const entries = [...dirs].sort().map((dir) => {
    const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as { name?: string; version?: string; license?: string };
    const licenceFile = readdirSync(join(root, dir)).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
    const text = licenceFile && existsSync(join(root, dir, licenceFile)) ? readFileSync(join(root, dir, licenceFile), 'utf8').trim() : `(no licence file; package.json says ${pkg.license ?? 'nothing'})`;
    return `${pkg.name ?? dir}@${pkg.version ?? '?'} (${pkg.license ?? 'unknown'})\n\n${text}\n`;
  });
  return `Third-party software bundled into canary's bundle/ (${entries.length} packages)\n\n${entries.join(`\n${'-'.repeat(72)}\n\n`)}`;
}

main().catch((err: unknown) => {
  console.error(`bundle: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
