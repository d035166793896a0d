import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateRollout, writeOpenMetrics } from './generate.js';
import { backfill, blockCount, removeDir } from './prometheus.js';
import type { RolloutSpec } from './spec.js';

// generate → OpenMetrics → promtool, a few rollouts per file so the text never piles up on disk
// and promtool runs on one core while the generator runs on the other. The finished blocks are
// kept in the system temp dir under a hash of the corpus and the generator's own code, so a
// second run of the same corpus (the judge engineer's loop) starts at the backtests.

const ROLLOUTS_PER_FILE = 12;
const CACHE_ROOT = join(tmpdir(), 'canary-judge-corpus');

function generatorFingerprint(specs: readonly RolloutSpec[]): string {
  const hash = createHash('sha256').update(JSON.stringify(specs));
  for (const file of ['generate.js', 'spec.js', 'random.js']) {
    hash.update(readFileSync(fileURLToPath(new URL(`./${file}`, import.meta.url))));
  }
  return hash.digest('hex').slice(0, 20);
}

export interface PreparedCorpus {
  /** A private copy of the blocks, for Prometheus to own. */
  dataDir: string;
  samples: number | null;
  blocks: number;
  cached: boolean;
}

export async function prepareCorpus(specs: readonly RolloutSpec[], workDir: string, opts: { fresh: boolean; log: (line: string) => void }): Promise<PreparedCorpus> {
  const cacheDir = join(CACHE_ROOT, generatorFingerprint(specs));
  const dataDir = join(workDir, 'data');
  let samples: number | null = null;
  const cached = !opts.fresh && existsSync(join(cacheDir, '.complete'));
  if (!cached) {
    const building = `${cacheDir}.partial-${process.pid}`;
    removeDir(building);
    mkdirSync(building, { recursive: true });
    const inFlight: Promise<void>[] = [];
    samples = 0;
    const withData = specs.filter((s) => s.hasData);
    for (let i = 0; i < withData.length; i += ROLLOUTS_PER_FILE) {
      const file = join(workDir, `corpus-${i}.om`);
      samples += await writeOpenMetrics(file, withData.slice(i, i + ROLLOUTS_PER_FILE).map(generateRollout));
      if (inFlight.length >= 2) await inFlight.shift();
      inFlight.push(backfill(file, building).finally(() => rmSync(file, { force: true })));
      opts.log(`  generated ${Math.min(i + ROLLOUTS_PER_FILE, withData.length)}/${withData.length} rollouts`);
    }
    await Promise.all(inFlight);
    writeFileSync(join(building, '.complete'), '');
    removeDir(cacheDir);
    mkdirSync(CACHE_ROOT, { recursive: true });
    renameSync(building, cacheDir);
  }
  cpSync(cacheDir, dataDir, { recursive: true, filter: (src) => !src.endsWith('.complete') });
  return { dataDir, samples, blocks: blockCount(dataDir), cached };
}
