// Proves that the checked-in bundle/ is what the sources build to: run after `npm run build`
// (which rebuilds bundle/ in place), it asks git whether bundle/ now differs from the last commit.
// The GitHub Action and the npm package run bundle/ as committed, so a stale one would ship code
// the tests never saw. Under CI (CI=true) or with --strict a difference fails; on a developer's
// machine, where sources change before they are committed, it only warns.
//
// Usage: node dist/scripts/check-bundle.js [--strict]

import { spawnSync } from 'node:child_process';
import { packageRoot } from '../src/paths.js';

const STALE = 'the checked-in bundle is stale: run npm run bundle and commit';

function main(): number {
  const strict = process.argv.includes('--strict') || Boolean(process.env['CI'] && process.env['CI'] !== 'false');
  const git = spawnSync('git', ['status', '--porcelain', '--untracked-files=all', '--', 'bundle'], { cwd: packageRoot(), encoding: 'utf8' });
  if (git.error || git.status !== 0) {
    // An unpacked npm package or a source tarball: nothing to compare against.
    console.log(`check-bundle: skipped, not a git checkout (${git.error?.message ?? git.stderr.trim()})`);
    return 0;
  }
  const changed = git.stdout.split('\n').filter(Boolean);
  if (changed.length === 0) {
    console.log('check-bundle: bundle/ matches the sources');
    return 0;
  }
  const list = changed.slice(0, 10).map((l) => `  ${l}`).join('\n') + (changed.length > 10 ? `\n  … and ${changed.length - 10} more` : '');
  if (strict) {
    console.error(`check-bundle: ${STALE}\n${list}`);
    return 1;
  }
  console.warn(`check-bundle: warning: ${STALE} (fails under CI)\n${list}`);
  return 0;
}

process.exitCode = main();
