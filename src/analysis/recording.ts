import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { writeRedacted } from '../redaction/sinks.js';
import { dirname } from 'node:path';
import * as z from 'zod';
import { CanaryError } from '../errors.js';
import { redact, redactDeep, redactedJson } from '../secrets.js';
import { parseQueryResponse, type RawAnswer, type RawQuerier } from './prometheus-client.js';
import type { MetricsSource, QueryResult } from './types.js';

/*
 * Recording format (version 1)
 * ----------------------------
 * A recording is one JSON file holding every Prometheus instant query a rollout asked and the raw
 * answer it got, so `--replay FILE` runs the same rollout again, on a virtual clock, through the
 * same parsing and error paths as a live run.
 *
 *   {
 *     "format": "canary-recording",
 *     "version": 1,
 *     "createdAt": "2026-01-15T10:00:00.000Z",          // when the file was written
 *     "meta": {
 *       "target": "checkout",                           // rollout target name
 *       "namespace": "shop",
 *       "startedAt": "2026-01-15T10:05:00.000Z",        // the rollout's start; the replay clock starts here
 *       "policy": "default",                            // policy name (or path) used when recording
 *       "description": "canary error rate rises at 25%",// optional, free text
 *       "prometheus": "http://prometheus:9090"          // optional, the URL without credentials
 *     },
 *     "entries": [
 *       {
 *         "query": "sum(rate(nginx_ingress_controller_requests{…}[1m]))",  // PromQL exactly as sent
 *         "time": "2026-01-15T10:06:00.000Z",           // evaluation time (matched to the millisecond)
 *         "status": 200,                                // HTTP status; 0 when no HTTP answer arrived
 *         "body": { "status": "success", "data": { … } },// the body as Prometheus sent it (JSON, or text
 *                                                       // when it was not JSON), or null
 *         "error": "connection refused (ECONNREFUSED…)",// optional: why there was no usable HTTP answer
 *         "attempts": 1                                 // optional: attempts the client made
 *       }
 *     ]
 *   }
 *
 * A replay answers a query only from the entry with the same query text and the same time; a query
 * not in the file is an error ("recording-miss"), never a guess. Recordings hold no credentials:
 * no request headers, the Prometheus URL without user:password or query string, and every secret
 * the process knows (bearer token, passwords, the URL's query values) redacted from bodies and errors.
 */

export const RECORDING_FORMAT = 'canary-recording';
export const RECORDING_VERSION = 1;

export interface RecordingMeta {
  target: string;
  namespace: string;
  startedAt: string;
  policy: string;
  description?: string;
  prometheus?: string;
}

export interface RecordingEntry {
  query: string;
  time: string;
  status: number;
  body: unknown;
  error?: string;
  attempts?: number;
}

export interface Recording {
  format: typeof RECORDING_FORMAT;
  version: typeof RECORDING_VERSION;
  createdAt: string;
  meta: RecordingMeta;
  entries: RecordingEntry[];
}

const isoTime = (what: string) =>
  z.string({ error: `expected ${what} as an ISO 8601 time` }).refine((s) => Number.isFinite(Date.parse(s)), {
    message: `expected ${what} as an ISO 8601 time, e.g. 2026-01-15T10:00:00.000Z`,
  });

const text = (what: string) => z.string({ error: `expected ${what}` }).min(1, { message: `expected ${what}` });

const recordingSchema = z.object({
  format: z.literal(RECORDING_FORMAT),
  version: z.literal(RECORDING_VERSION),
  createdAt: isoTime('the creation time'),
  meta: z.object({
    target: text('the target name'),
    namespace: text('the namespace'),
    startedAt: isoTime('the rollout start time'),
    policy: text('the policy name'),
    description: z.string().optional(),
    prometheus: z.string().optional(),
  }),
  entries: z.array(
    z.object({
      query: text('the PromQL query'),
      time: isoTime('the query time'),
      status: z.number({ error: 'expected an HTTP status (0 for a network error)' }).int().min(0).max(599),
      body: z.unknown(),
      error: z.string().optional(),
      attempts: z.number().int().min(1).optional(),
    }),
  ),
});

const keyOf = (query: string, timeMs: number) => `${timeMs}\u0000${query}`;

/** Writes a recording as indented JSON; the file appears whole or not at all. */
export function writeRecording(path: string, recording: Recording): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    // Last line of defence: no registered secret, in any form, reaches the file.
    writeRedacted(tmp, redact(`${redactedJson(recording, 2)}\n`));
    renameSync(tmp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new CanaryError('invalid-input', `cannot write recording ${path} (${code}); expected a writable path`);
  }
}

export function loadRecording(path: string): Recording {
  let textContent: string;
  try {
    textContent = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new CanaryError('invalid-input', `cannot read recording ${path} (${code}); expected a canary recording JSON file`);
  }
  let data: unknown;
  try {
    data = JSON.parse(textContent);
  } catch (err) {
    throw new CanaryError('invalid-input', `recording ${path} is not valid JSON (${(err as Error).message}); expected a canary recording made with --record`);
  }
  const head = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  if (head.format !== RECORDING_FORMAT) {
    throw new CanaryError(
      'invalid-input',
      `${path} is not a canary recording: expected "format": "${RECORDING_FORMAT}", got ${head.format === undefined ? 'no "format"' : JSON.stringify(head.format)}`,
    );
  }
  if (head.version !== RECORDING_VERSION) {
    throw new CanaryError(
      'invalid-input',
      `recording ${path} has version ${JSON.stringify(head.version)}; this canary reads version ${RECORDING_VERSION}; re-record it with canary backtest --record`,
    );
  }
  const parsed = recordingSchema.safeParse(data);
  if (!parsed.success) {
    throw new CanaryError(
      'invalid-input',
      `recording ${path} is malformed`,
      parsed.error.issues.map((issue) => {
        const where = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
        return `${where || '(top level)'}: ${issue.message}`;
      }),
    );
  }
  return parsed.data as Recording;
}

/**
 * Passes queries through to a live querier and keeps each raw answer, then parses it exactly as
 * the client would. Call `recording()` at the end and write it with `writeRecording`.
 */
export class RecordingSource implements MetricsSource {
  private readonly entries = new Map<string, RecordingEntry>();

  constructor(
    private readonly raw: RawQuerier,
    private readonly meta: Omit<RecordingMeta, 'prometheus'>,
  ) {}

  async query(promql: string, at: Date): Promise<QueryResult> {
    const answer = await this.raw.queryRaw(promql, at);
    const entry: RecordingEntry = { query: promql, time: at.toISOString(), status: answer.status, body: answer.body ?? null };
    if (answer.error !== undefined) entry.error = answer.error;
    if (answer.attempts !== undefined) entry.attempts = answer.attempts;
    // The same question asked twice at the same moment keeps the latest answer, so replay is unambiguous.
    this.entries.delete(keyOf(promql, at.getTime()));
    this.entries.set(keyOf(promql, at.getTime()), redactDeep(entry));
    try {
      return parseQueryResponse(answer, { query: promql, at, url: this.raw.displayUrl });
    } catch (err) {
      if (err instanceof CanaryError) throw new CanaryError(err.kind, redact(err.message), err.details.map((d) => redact(d)));
      throw err;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  recording(metaOverrides: Partial<RecordingMeta> = {}): Recording {
    return {
      format: RECORDING_FORMAT,
      version: RECORDING_VERSION,
      createdAt: new Date().toISOString(),
      meta: redactDeep({ ...this.meta, prometheus: this.raw.displayUrl, ...metaOverrides }),
      entries: [...this.entries.values()],
    };
  }
}

/**
 * The metrics source for a run against live Prometheus: the client itself, or, with `--record
 * FILE`, a recorder in front of it whose `save()` writes the file (call it however the run ends).
 */
export function maybeRecording(
  raw: RawQuerier & MetricsSource,
  path: string | undefined,
  meta: Omit<RecordingMeta, 'prometheus'>,
): { source: MetricsSource; save(): void } {
  if (path === undefined) return { source: raw, save: () => undefined };
  const recorder = new RecordingSource(raw, meta);
  return { source: recorder, save: () => writeRecording(path, recorder.recording()) };
}

/** Answers queries from a recording, through the same parsing as live answers. */
export class ReplaySource implements MetricsSource {
  readonly meta: RecordingMeta;
  private readonly byKey = new Map<string, RecordingEntry>();
  private readonly timesByQuery = new Map<string, number[]>();
  private readonly first: number;
  private readonly last: number;

  /** `source` names the file in messages. */
  constructor(
    readonly recording: Recording,
    private readonly source: string,
  ) {
    this.meta = recording.meta;
    let first = Infinity;
    let last = -Infinity;
    for (const entry of recording.entries) {
      const ms = Date.parse(entry.time);
      // First answer wins, as in the file's own order.
      if (!this.byKey.has(keyOf(entry.query, ms))) this.byKey.set(keyOf(entry.query, ms), entry);
      const times = this.timesByQuery.get(entry.query) ?? [];
      times.push(ms);
      this.timesByQuery.set(entry.query, times);
      first = Math.min(first, ms);
      last = Math.max(last, ms);
    }
    this.first = first;
    this.last = last;
  }

  static fromFile(path: string): ReplaySource {
    return new ReplaySource(loadRecording(path), path);
  }

  /** The virtual clock starts here. */
  get startedAt(): Date {
    return new Date(this.meta.startedAt);
  }

  async query(promql: string, at: Date): Promise<QueryResult> {
    const entry = this.byKey.get(keyOf(promql, at.getTime()));
    if (!entry) throw this.miss(promql, at);
    const answer: RawAnswer = { status: entry.status, body: entry.body };
    if (entry.error !== undefined) answer.error = entry.error;
    if (entry.attempts !== undefined) answer.attempts = entry.attempts;
    return parseQueryResponse(answer, { query: promql, at, ...(this.meta.prometheus ? { url: this.meta.prometheus } : {}) });
  }

  private miss(promql: string, at: Date): CanaryError {
    const n = this.recording.entries.length;
    const holds =
      n === 0
        ? 'it holds no answers'
        : `it holds ${n} answer${n === 1 ? '' : 's'} from ${new Date(this.first).toISOString()} to ${new Date(this.last).toISOString()}`;
    const times = this.timesByQuery.get(promql);
    let hint: string;
    if (!times) {
      hint = 'this query is not in it at any time (the policy or target may differ from the one recorded)';
    } else {
      const nearest = times.reduce((best, t) => (Math.abs(t - at.getTime()) < Math.abs(best - at.getTime()) ? t : best));
      hint = `the nearest recorded time for this query is ${new Date(nearest).toISOString()} (the interval or start time may differ)`;
    }
    return new CanaryError(
      'recording-miss',
      `recording ${this.source} has no answer for query ${promql} at ${at.toISOString()} (${holds}); ${hint}; re-record it with canary backtest --record`,
    );
  }
}
