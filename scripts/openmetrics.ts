import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { FAMILIES, type Family, type Sample } from './traffic-model.js';

// Writes traffic models as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.
// OpenMetrics wants each metric family's samples together, and the TSDB wants each series'
// samples in time order; so the file is written family by family, and within a family scrape by
// scrape, regenerating the (deterministic) model once per family instead of holding it in memory.

/** Anything that yields scrapes in time order: a TrafficModel, or several on separate days. */
export interface ScrapeSource {
  scrapes(): Iterable<{ at: Date; samples: readonly Sample[] }>;
}

export interface WriteSummary {
  samples: number;
  bytes: number;
}

const FLUSH_AT = 1 << 16;

export function escapeOpenMetricsLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

export function formatSample(sample: Sample, at: Date): string {
  const labels = Object.entries(sample.labels)
    .map(([k, v]) => `${k}="${escapeOpenMetricsLabel(v)}"`)
    .join(',');
  // OpenMetrics timestamps are in seconds; scrapes fall on whole seconds.
  return `${sample.name}{${labels}} ${formatValue(sample.value)} ${at.getTime() / 1000}\n`;
}

/**
 * Streams the sources' samples to `path`, sources in the order given (they must not overlap in
 * time, so each series stays in time order). Ends with the mandatory `# EOF`.
 */
export async function writeOpenMetrics(
  path: string,
  sources: readonly ScrapeSource[],
  families: readonly Family[] = FAMILIES,
): Promise<WriteSummary> {
  const out = createWriteStream(path, { encoding: 'utf8' });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  let chunk = '';
  let samples = 0;
  let bytes = 0;
  const flush = async () => {
    if (!chunk) return;
    bytes += Buffer.byteLength(chunk);
    const ok = out.write(chunk);
    chunk = '';
    if (!ok) await Promise.race([once(out, 'drain'), failed]);
  };

  for (const family of families) {
    chunk += `# HELP ${family.name} ${family.help}\n# TYPE ${family.name} ${family.type}\n`;
    for (const source of sources) {
      for (const scrape of source.scrapes()) {
        for (const sample of scrape.samples) {
          if (sample.family !== family.name) continue;
          chunk += formatSample(sample, scrape.at);
          samples++;
          if (chunk.length >= FLUSH_AT) await flush();
        }
      }
    }
  }
  chunk += '# EOF\n';
  await flush();
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  return { samples, bytes };
}
