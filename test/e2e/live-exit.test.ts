import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO, type CliRun } from '../support/run-cli.js';

// Once the command has decided its exit code, the process exits, even when something (a timer, a
// socket, an API call nobody cancelled) would keep Node's event loop alive: a CI job must not hang
// after canary has finished, and the output must arrive whole.

// Preloaded into the CLI's process: a handle that would keep it alive forever.
const KEEP_ALIVE = 'data:text/javascript,setInterval(() => {}, 1000)';

function runWithLeak(args: readonly string[]): Promise<CliRun | 'still running'> {
  const child = spawn(process.execPath, ['--import', KEEP_ALIVE, 'bin/canary', ...args], {
    cwd: REPO,
    env: { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, GITHUB_ACTIONS: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const done = new Promise<CliRun>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  // A bound on waiting, not an assertion on time: without the launcher's exit this never resolves.
  const bound = new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 60_000));
  return Promise.race([done, bound]).finally(() => child.kill('SIGKILL'));
}

describe('bin/canary', () => {
  it('exits with the command\'s code once it is done, output complete, even with a handle left open', async () => {
    const ok = await runWithLeak(['validate', 'policies/default.yaml']);
    expect(ok).not.toBe('still running');
    expect((ok as CliRun).code).toBe(0);
    expect((ok as CliRun).stdout).toMatch(/- cpu \(query\): reported \[advisory\]\n$/);

    const bad = await runWithLeak(['validate', 'does-not-exist.yaml']);
    expect(bad).not.toBe('still running');
    expect((bad as CliRun).code).toBe(2);
    expect((bad as CliRun).stderr).toContain('does-not-exist.yaml');
  });
});
