import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO } from '../support/run-cli.js';

// `canary backtest … | head -1`: the reader goes away after the first line. The command must end
// with its own exit code and no EPIPE stack trace.

function runUntilFirstLine(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/canary', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    // Like head -1: read the first chunk, then close the pipe.
    child.stdout.once('data', () => child.stdout.destroy());
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

describe('a closed stdout', () => {
  it('ends a rolled-back replay quietly with exit 3', async () => {
    const run = await runUntilFirstLine(['deploy', 'checkout', '-n', 'shop', '--image', 'shop/checkout:2', '--dry-run', '--replay', 'examples/recordings/error-regression.json']);
    expect(run.stderr).not.toContain('EPIPE');
    expect(run.stderr).not.toMatch(/at .*\(node:/);
    expect(run.code).toBe(3);
  });
});
