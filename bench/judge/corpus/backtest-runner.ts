import { AsyncLocalStorage } from 'node:async_hooks';
import { backtestCommand } from '../../../src/cli/backtest.js';
import { exitCodeOf, messageOf } from '../../../src/errors.js';
import type { Outcome, RolloutRecord } from '../../../src/rollout/record.js';

// Runs `canary backtest … -o json` in this process, many at a time: the same command function
// the CLI calls, with the same flags, so the benchmark sees exactly what a user's backtest sees.
// Each run's stdout and stderr are captured apart by following its async context; a process per
// run would spend more time starting Node than judging.

interface Captured {
  stdout: string;
  stderr: string;
}

const context = new AsyncLocalStorage<Captured>();
let installed = false;

type Write = typeof process.stdout.write;

function divert(stream: NodeJS.WriteStream, key: keyof Captured): void {
  const original = stream.write.bind(stream) as Write;
  const write = (chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
    const captured = context.getStore();
    if (!captured) return (original as (...args: unknown[]) => boolean)(chunk, encoding, callback);
    captured[key] += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
    return true;
  };
  stream.write = write as Write;
}

function install(): void {
  if (installed) return;
  installed = true;
  divert(process.stdout, 'stdout');
  divert(process.stderr, 'stderr');
}

export interface BacktestRequest {
  target: string;
  namespace: string;
  fromMs: number;
  policyPath: string;
  prometheusUrl: string;
}

export interface BacktestRun {
  code: number;
  outcome: Outcome | null;
  record: RolloutRecord | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export async function runBacktest(request: BacktestRequest): Promise<BacktestRun> {
  install();
  const captured: Captured = { stdout: '', stderr: '' };
  const started = Date.now();
  const code = await context.run(captured, async () => {
    try {
      return await backtestCommand(request.target, {
        namespace: request.namespace,
        policy: request.policyPath,
        prometheus: request.prometheusUrl,
        from: new Date(request.fromMs).toISOString(),
        output: 'json',
      });
    } catch (err) {
      // What main() does with an error a command throws.
      process.stderr.write(`canary: ${messageOf(err)}\n`);
      return exitCodeOf(err);
    }
  });
  let outcome: Outcome | null = null;
  let record: RolloutRecord | null = null;
  if (captured.stdout.trim()) {
    try {
      const doc = JSON.parse(captured.stdout) as { outcome?: Outcome; record?: RolloutRecord };
      outcome = doc.outcome ?? null;
      record = doc.record ?? null;
    } catch {
      // Not one JSON document: reported as it is.
    }
  }
  return { code, outcome, record, stdout: captured.stdout, stderr: captured.stderr, ms: Date.now() - started };
}

/** Runs `work` over `items` with at most `limit` in flight; results keep the items' order. */
export async function pool<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>, onDone?: (done: number) => void): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= items.length) return;
      results[index] = await work(items[index] as T, index);
      onDone?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
