import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The package root, whether running from src/ under vitest or from dist/ when built. */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('canary: cannot find its package.json; is the install complete?');
    dir = parent;
  }
  cached = dir;
  return dir;
}

export const shippedPath = (...parts: string[]) => join(packageRoot(), ...parts);
