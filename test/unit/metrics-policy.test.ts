import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { loadPolicy } from '../../src/policy/loader.js';
import { runCli } from '../support/run-cli.js';

// spec.metrics (docs/metrics.md): defaults, and the mistakes refused with the field named.

const dir = mkdtempSync(join(tmpdir(), 'canary-metrics-policy-'));
let n = 0;
function file(text: string): string {
  const path = join(dir, `p${(n += 1)}.yaml`);
  writeFileSync(path, `apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  metrics:\n${text}`);
  return path;
}

function problems(text: string): string {
  try {
    loadPolicy(file(text));
  } catch (err) {
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(2);
    return [(err as CanaryError).message, ...(err as CanaryError).details].join('\n');
  }
  throw new Error('policy was accepted');
}

describe('spec.metrics', () => {
  it('defaults: environment production, no Pushgateway; a Pushgateway gets 5 s per request and 10 s per push', () => {
    expect(loadPolicy().metrics).toEqual({ environment: 'production' });
    const p = loadPolicy(file('    environment: staging\n    pushgateway:\n      url: http://pgw:9091\n      bearerToken: { env: PGW_TOKEN }\n'));
    expect(p.metrics).toEqual({
      environment: 'staging',
      pushgateway: { url: 'http://pgw:9091', timeoutMs: 5_000, deadlineMs: 10_000, bearerToken: { env: 'PGW_TOKEN' }, headers: {}, insecureSkipVerify: false },
    });
  });

  it('refuses credentials in the URL or in headers, both kinds of auth, and a secret written in the policy (without echoing it)', () => {
    expect(problems('    pushgateway:\n      url: http://user:hunter2hunter2@pgw:9091\n')).toMatch(/spec\.metrics\.pushgateway\.url: expected no user:password@ or \?query/);
    expect(problems('    pushgateway:\n      url: http://pgw:9091\n      headers: { Authorization: Bearer x }\n')).toMatch(/spec\.metrics\.pushgateway\.headers\.Authorization: credentials never go in the policy/);
    expect(
      problems('    pushgateway:\n      url: http://pgw:9091\n      bearerToken: { env: T }\n      basicAuth: { username: u, password: { env: P } }\n'),
    ).toMatch(/spec\.metrics\.pushgateway: expected either bearerToken or basicAuth, got both/);
    const pasted = problems('    pushgateway:\n      url: http://pgw:9091\n      bearerToken: s3cr3t-t0ken-value\n');
    expect(pasted).toMatch(/spec\.metrics\.pushgateway\.bearerToken/);
    expect(pasted).not.toContain('s3cr3t-t0ken-value');
    expect(problems('    pushgateway:\n      url: ftp://pgw\n')).toMatch(/spec\.metrics\.pushgateway\.url: expected an http:\/\/ or https:\/\/ URL, got scheme "ftp"/);
    expect(problems('    pushgatway:\n      url: http://pgw:9091\n')).toMatch(/spec\.metrics: unknown field "pushgatway"/);
  });
});

describe('canary status: a name or --all', () => {
  it('without either, or with both, exits 2 saying what was expected', async () => {
    const none = await runCli(['status']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('status: expected a target name');
    const both = await runCli(['status', 'checkout', '--all']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--all: expected no target name, got "checkout"');
    const nA = await runCli(['status', '--all', '-A', '-n', 'shop']);
    expect(nA.code).toBe(2);
    expect(nA.stderr).toContain('-A and -n: expected one of them');
  }, 60_000);
});
