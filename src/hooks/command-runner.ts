// The HookRunner adapter: each hook is one process, started without a shell, in a process group of
// its own so that a timeout (or the deploy's cancellation) ends it and everything it started.
// Its environment is built, not inherited: a few variables a program needs to run (PATH, HOME,
// locale, TMPDIR), the rollout's context, and what the policy adds — so the deploy's own secrets
// (kubeconfig tokens, Prometheus or incident credentials) never reach a hook unless the policy
// hands one over, and then that value is registered with the redaction boundary first.

import { spawn } from 'node:child_process';
import { hookEnvironment, type HookContext, type HookResult, type HookRunner } from '../rollout/hooks.js';
import type { HookSpec } from '../policy/hooks-schema.js';
import { resolveHeaders } from '../policy/headers.js';
import { formatDuration } from '../policy/units.js';
import { redact } from '../redaction/registry.js';

/** Inherited from the deploy's environment when set: enough to find and run a program, no more. */
export const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ'] as const;
/** How much of a hook's output is kept while it runs (the end of it), and shown as evidence. */
const KEEP_BYTES = 16 * 1024;
const EXCERPT_CHARS = 1000;
/** Between SIGTERM to the group and SIGKILL: a hook may clean up, briefly. */
const DEFAULT_KILL_GRACE_MS = 2_000;

/** Process groups still running, killed if the deploy exits (a second signal) before they end. */
const live = new Set<number>();
let exitHookInstalled = false;
function track(pid: number): void {
  live.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const group of live) killGroup(group, 'SIGKILL');
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

export interface CommandHookRunnerOptions {
  /** Each hook's policy env, already read (env vars, files) and registered as secrets. */
  env: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** Where INHERITED_ENV is read from (default process.env). */
  base?: NodeJS.ProcessEnv;
  killGraceMs?: number;
}

export class CommandHookRunner implements HookRunner {
  constructor(private readonly opts: CommandHookRunnerOptions) {}

  /**
   * Reads every hook's env values now (a missing variable or file is exit 2, before the first
   * write) and registers the secret ones with the redaction boundary.
   */
  static forHooks(hooks: readonly HookSpec[], base: NodeJS.ProcessEnv = process.env): CommandHookRunner {
    const env = new Map<string, Record<string, string>>();
    hooks.forEach((h, i) => env.set(h.name, resolveHeaders(h.env, `spec.hooks[${i}].env`)));
    return new CommandHookRunner({ env, base });
  }

  environment(hook: HookSpec, context: HookContext): Record<string, string> {
    const base = this.opts.base ?? process.env;
    const inherited = Object.fromEntries(INHERITED_ENV.flatMap((k) => (base[k] !== undefined ? [[k, base[k] as string]] : [])));
    return { ...inherited, ...(this.opts.env.get(hook.name) ?? {}), ...hookEnvironment(context) };
  }

  run(hook: HookSpec, context: HookContext, signal?: AbortSignal): Promise<HookResult> {
    const [file, ...args] = hook.command;
    const grace = this.opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    return new Promise<HookResult>((resolve) => {
      let output = Buffer.alloc(0);
      const keep = (chunk: Buffer) => {
        output = Buffer.concat([output, chunk]);
        if (output.length > KEEP_BYTES) output = output.subarray(output.length - KEEP_BYTES);
      };
      let timedOut = false;
      let cancelled = false;
      let startError: NodeJS.ErrnoException | undefined;
      const timers: NodeJS.Timeout[] = [];
      const child = spawn(file ?? '', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: this.environment(hook, context) });
      const pid = child.pid;
      if (pid !== undefined) track(pid);
      // SIGTERM to the whole group, then SIGKILL after the grace: nothing the hook started outlives it.
      const end = () => {
        if (pid === undefined) return;
        killGroup(pid, 'SIGTERM');
        timers.push(setTimeout(() => killGroup(pid, 'SIGKILL'), grace));
      };
      timers.push(
        setTimeout(() => {
          timedOut = true;
          end();
        }, hook.timeoutMs),
      );
      const onAbort = () => {
        cancelled = true;
        end();
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      child.on('error', (err: NodeJS.ErrnoException) => {
        startError = err;
        // Never started: no 'close' need follow.
        if (pid === undefined) finish(null, null);
      });
      // The hook is done when it exits; what it left running in its group goes with it, so
      // the output pipes close and no background process of a hook outlives its step.
      child.on('exit', () => {
        if (pid !== undefined) killGroup(pid, 'SIGKILL');
      });
      let done = false;
      const finish = (code: number | null, sig: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        for (const t of timers) clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
        if (pid !== undefined) live.delete(pid);
        const exitCode = timedOut || cancelled ? null : code;
        let status: string;
        if (startError && pid === undefined) status = `could not start ${JSON.stringify(file)}: ${startError.code ?? startError.message}${startError.code === 'ENOENT' ? ' (no such executable; a path is relative to the directory canary runs in, and PATH is searched)' : ''}`;
        else if (timedOut) status = `timed out after ${formatDuration(hook.timeoutMs)}: its process group was killed`;
        else if (cancelled) status = 'stopped: the deploy was cancelled, its process group was killed';
        else if (code !== null) status = `exited ${code}`;
        else status = `killed by ${sig ?? 'a signal'}`;
        const text = output.toString('utf8').replace(/^\uFFFD+/, '');
        const excerpt = redact(text.length > EXCERPT_CHARS ? `…${text.slice(-EXCERPT_CHARS)}` : text).trimEnd();
        resolve({ name: hook.name, at: context.at, ok: exitCode === 0 && !startError, status: redact(status), exitCode, timedOut, excerpt });
      };
      child.on('close', finish);
    });
  }
}
