// Each distinct PromQL text is stored once per rollout record, whatever the check rate or the
// newest check's shape (issue 16: the kept checks' query texts were repeated per check, 586 KB
// at 1,000 checks), and the record reads back exactly as the engine wrote it, old records too.

import { describe, expect, it } from 'vitest';
import type { CheckRecord } from '../../src/analysis/types.js';
import { parseRecordText, serializeRecord } from '../../src/k8s/configmap-state-store.js';
import { keepCheck, type RolloutRecord } from '../../src/rollout/record.js';
import { realisticCheck, recordWithChecks } from '../support/records.js';

const occurrences = (text: string, part: string): number => text.split(part).length - 1;
const queriesOf = (check: CheckRecord): string[] => [...new Set(check.results.flatMap((r) => r.queries))];

/** The newest check found Prometheus unreachable: inconclusive, no query answered. */
function unanswered(template: CheckRecord, index: number): CheckRecord {
  return { ...structuredClone(template), index, verdict: 'inconclusive', results: template.results.map((r) => ({ ...r, verdict: 'inconclusive', queries: [] })) };
}

describe('query texts in the stored record', () => {
  it('are stored once each, however many kept checks ran them and whatever the newest check asked', async () => {
    const template = await realisticCheck();
    const record = recordWithChecks(1000, template, 50);
    keepCheck(record, unanswered(template, 1001), 50);
    const text = serializeRecord(record);
    const queries = queriesOf(template);
    expect(queries.length).toBeGreaterThan(0);
    for (const q of queries) expect(occurrences(text, JSON.stringify(q))).toBe(1);
    // Before: each of the 49 older checks carried every text (about 11 KB a check).
    expect(Buffer.byteLength(text)).toBeLessThan(300 * 1024);
  });

  it('the same whole-record size at 1,000 and 10,000 checks', async () => {
    const template = await realisticCheck();
    const sizes = [1000, 10_000].map((n) => {
      const record = recordWithChecks(n, template, 50);
      keepCheck(record, unanswered(template, n + 1), 50);
      return Buffer.byteLength(serializeRecord(record));
    });
    // A check index of 10,000 prints with one digit more than 1,000: at most 1% more.
    expect(sizes[1]).toBeLessThanOrEqual((sizes[0] as number) * 1.01);
  });

  it('reads back as the engine wrote it: every check with its queries inline', async () => {
    const template = await realisticCheck();
    const record = recordWithChecks(60, template, 50);
    keepCheck(record, unanswered(template, 61), 50);
    const stored = JSON.parse(serializeRecord(record)) as Record<string, unknown>;
    // What a person finds with kubectl: the table once, each result naming its entries.
    expect(stored['queryTexts']).toEqual(queriesOf(template));
    expect(parseRecordText(serializeRecord(record))).toEqual(record);
    // Field for field in the order written (the checks in their place, before the tallies).
    expect(JSON.stringify(parseRecordText(serializeRecord(record)))).toBe(JSON.stringify(record));
  });

  it('a record written before the table (queries inline in each check) reads as it was', async () => {
    const template = await realisticCheck();
    const old: RolloutRecord = recordWithChecks(3, template, 50);
    expect(parseRecordText(JSON.stringify(old))).toEqual(old);
  });

  it('a trimmed record (over the byte limit) keeps the newest checks\' queries readable', async () => {
    const template = await realisticCheck();
    const record = recordWithChecks(200, template, 200);
    const limit = Math.floor(Buffer.byteLength(JSON.stringify(record)) / 20);
    const text = serializeRecord(record, limit);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(limit);
    const back = parseRecordText(text) as RolloutRecord & { trimmed?: boolean };
    expect(back.trimmed).toBe(true);
    expect(back.checks.at(-1)?.results.flatMap((r) => r.queries)).toEqual(template.results.flatMap((r) => r.queries));
    expect(back.checks[0]?.results.every((r) => r.queries.length === 0)).toBe(true);
  });
});
