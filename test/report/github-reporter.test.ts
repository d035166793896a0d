import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeData, githubReporterFromEnv, GitHubReporter, outputLine } from '../../src/report/github-reporter.js';
import type { IncidentSink } from '../../src/rollout/ports.js';
import { healthy } from '../support/scripted-metrics.js';
import { policyFrom, runRollout } from '../support/incident-fixtures.js';
import { checkoutQuery } from '../support/preset-queries.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'canary-gha-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return { stream, text: () => text };
}

/** A workflow command line as the runner shows it (the reverse of escapeData/escapeProperty). */
const decode = (line: string) => line.replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%3A/g, ':').replace(/%2C/g, ',').replace(/%25/g, '%');

/** Outputs as the runner reads them: name=value lines. */
function readOutputs(path: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

const pager: IncidentSink = { name: 'pagerduty', open: async () => ({ sink: 'pagerduty', ok: true, url: 'https://acme.pagerduty.com/incidents/Q1', message: 'PagerDuty alert triggered' }) };
const brokenSlack: IncidentSink = { name: 'slack', open: async () => ({ sink: 'slack', ok: false, message: 'Slack answered HTTP 404: no_service' }) };

async function rolledBack(name: string, dryRun = false) {
  const summaryPath = join(dir, `${name}-summary.md`);
  const outputPath = join(dir, `${name}-output`);
  writeFileSync(summaryPath, '');
  writeFileSync(outputPath, 'earlier-step=kept\n');
  const commands = capture();
  const dashboardUrl = 'https://grafana.example.com/d/c?var-target={{target}}';
  const reporter = dryRun
    ? githubReporterFromEnv({ GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summaryPath, GITHUB_OUTPUT: outputPath }, commands.stream, { dashboardUrl, dryRun: true })!
    : new GitHubReporter({ commands: commands.stream, summaryPath, outputPath, dashboardUrl });
  const run = await runRollout({ reporter, incidents: [pager, brokenSlack] });
  return { run, summary: readFileSync(summaryPath, 'utf8'), outputs: readOutputs(outputPath), log: commands.text() };
}

describe('GitHub Actions reporter', () => {
  it('writes outputs a later step can branch on after a rollback', async () => {
    const { outputs, run } = await rolledBack('outputs');
    expect(run.exitCode).toBe(3);
    expect(outputs).toEqual({
      'earlier-step': 'kept',
      result: 'rolled-back',
      'rollout-id': 'checkout-20260115T100000Z',
      'final-weight': '0',
      'incident-url': 'https://acme.pagerduty.com/incidents/Q1',
      'exit-code': '3',
    });
  });

  it('groups the log per step and annotates the rollback reason and the failed sink', async () => {
    const { log } = await rolledBack('log');
    const lines = log.split('\n').map(decode);
    expect(lines.filter((l) => l.startsWith('::group::'))).toEqual(['::group::Step 1/3: 10% to canary for 15m', '::group::Step 2/3: 25% to canary for 10m']);
    expect(lines.filter((l) => l === '::endgroup::')).toHaveLength(2);
    const error = lines.find((l) => l.startsWith('::error '));
    expect(error).toMatch(/^::error title=Canary rolled back: checkout::error-rate: canary error rate 12% is above the 5% limit/);
    expect(error).toContain('— traffic: canary at 0%, all traffic on stable');
    expect(lines).toContain('::warning title=Incident sink slack failed::Slack answered HTTP 404: no_service');
    // Groups are closed before the outcome is annotated, so the error is not hidden in a collapsed step.
    expect(lines.lastIndexOf('::endgroup::')).toBeLessThan(lines.indexOf(error!));
  });

  it('writes a job summary with the outcome, evidence, incidents, steps, charts and checks', async () => {
    const { summary } = await rolledBack('summary');
    expect(summary).toContain('## ❌ Canary rolled back: `checkout` → `shop/checkout:2`');
    expect(summary).toContain('**Reason:** error-rate: canary error rate 12% is above the 5% limit (72 of 600 requests failed)');
    expect(summary).toContain('| Images | stable `shop/checkout:1` → canary `shop/checkout:2` |');
    expect(summary).toContain('| Traffic | canary at 0%, all traffic on stable (canary weight now 0%) |');
    expect(summary).toContain('| Stable after rollback | ✅ verified available');
    expect(summary).toContain('| Dashboard | [open](https://grafana.example.com/d/c?var-target=checkout) |');
    expect(summary).toContain('| 21 (25%) | error-rate | error rate ≤ 5% | **12%** | 0.51% | 5% | canary error rate 12% is above the 5% limit (72 of 600 requests failed) |');
    expect(summary).toContain(`${checkoutQuery('errors', 'canary')}\n`);
    expect(summary).toContain('| pagerduty | ✅ delivered | [https://acme.pagerduty.com/incidents/Q1](https://acme.pagerduty.com/incidents/Q1) · PagerDuty alert triggered |');
    expect(summary).toContain('| slack | ⚠️ failed | Slack answered HTTP 404: no_service |');
    expect(summary).toContain('| 1 | 10% | 2026-01-15T10:00:00.000Z | 2026-01-15T10:15:00.000Z | 15 (15 pass, 0 fail, 0 inconclusive, 0 pending) | passed |');
    expect(summary).toContain('| 2 | 25% | 2026-01-15T10:15:00.000Z | - | 6 (5 pass, 1 fail, 0 inconclusive, 0 pending) | rolled-back |');
    expect(summary).toContain('| 21 | +21 | 25% | ❌ fail | 12% / 0.51% | 200ms / 190ms | error-rate: canary error rate 12% is above the 5% limit');

    const charts = [...summary.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    expect(charts).toHaveLength(3);
    const [errorChart, latencyChart, weightChart] = charts;
    const minutes = Array.from({ length: 21 }, (_, i) => i + 1).join(', ');
    expect(errorChart).toContain('xychart-beta');
    expect(errorChart).toContain(`x-axis "minutes since start" [${minutes}]`);
    // Canary first, stable second, in percent: 1/240 = 0.417% until the regression's 12%.
    expect(errorChart).toContain(`line [${[...Array(20).fill('0.417'), '12'].join(', ')}]`);
    expect(errorChart).toContain(`line [${Array(21).fill('0.509').join(', ')}]`);
    expect(latencyChart).toContain('title "p95-latency: canary vs stable (ms)"');
    expect(latencyChart).toContain(`line [${Array(21).fill('200').join(', ')}]`);
    expect(weightChart).toContain(`x-axis "minutes since start" [${minutes}, end]`);
    expect(weightChart).toContain(`bar [${[...Array(15).fill('10'), ...Array(6).fill('25'), '0'].join(', ')}]`);
  });

  it('marks a dry-run as one: a notice, a "Dry-run:" heading, and stable not verified', async () => {
    const { summary, log, outputs } = await rolledBack('dry-run', true);
    const lines = log.split('\n').map(decode);
    expect(lines.some((l) => l.startsWith('::error'))).toBe(false);
    expect(lines.find((l) => l.startsWith('::notice '))).toMatch(/^::notice title=Dry-run: Canary rolled back: checkout::error-rate: canary error rate 12% is above the 5% limit/);
    expect(summary).toMatch(/^## Dry-run: ❌ Canary rolled back: `checkout` → `shop\/checkout:2`\n/);
    expect(summary).toContain('_A dry-run: nothing in the cluster was changed._');
    expect(summary).toContain('| Stable after rollback | not verified (dry-run) |');
    expect(summary).not.toContain('verified available');
    // The evidence and outputs are the same as for a real rollout.
    expect(summary).toContain('| 21 (25%) | error-rate | error rate ≤ 5% | **12%** | 0.51% | 5% |');
    expect(outputs).toMatchObject({ result: 'rolled-back', 'exit-code': '3' });
  });

  it('warns once per advisory metric that breaches its limit', async () => {
    const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  steps:
    - { weight: 50, duration: 5m }
  analysis:
    metrics:
      - { name: error-rate, type: error-rate, max: 5% }
      - { name: memory, type: query, query: memory, unit: bytes, critical: false, max: 100000000 }
`);
    const commands = capture();
    const outputPath = join(dir, 'advisory-output');
    writeFileSync(outputPath, '');
    const reporter = new GitHubReporter({ commands: commands.stream, outputPath });
    const { exitCode } = await runRollout({ policy, scenario: healthy, reporter });
    expect(exitCode).toBe(0);
    const lines = commands.text().split('\n').map(decode);
    const warnings = lines.filter((l) => l.startsWith('::warning '));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^::warning title=Advisory check memory::memory: .*\(check 1 at 50%; advisory, does not decide the rollout\)$/);
    expect(lines.find((l) => l.startsWith('::notice '))).toMatch(/^::notice title=Canary promoted: checkout::all 5 checks passed/);
    expect(readOutputs(outputPath)).toMatchObject({ result: 'promoted', 'final-weight': '0', 'incident-url': '' });
  });

  it('is on only in GitHub Actions, and escapes what the runner would misread', () => {
    expect(githubReporterFromEnv({}, process.stdout)).toBeNull();
    expect(githubReporterFromEnv({ GITHUB_ACTIONS: 'true' }, process.stdout)).toBeInstanceOf(GitHubReporter);
    expect(escapeData('50%\nline two')).toBe('50%25%0Aline two');
    expect(outputLine('result', 'rolled-back')).toBe('result=rolled-back\n');
    expect(outputLine('notes', 'a\nb')).toMatch(/^notes<<(ghadelimiter_[0-9a-f-]+)\na\nb\n\1\n$/);
  });
});

describe('workflow commands and the job summary go through the redaction boundary', () => {
  it('a registered secret in a failed sink\'s message is redacted in the annotation, its title and the summary, in every form', async () => {
    const { clearRegisteredSecrets, registerBasicAuth, registerHeaderValue } = await import('../../src/secrets.js');
    registerHeaderValue('X-Api-Key', 'gh/annot%secret-55');
    registerBasicAuth('bot', 'bot/pass-word-9');
    try {
      const out = capture();
      const summaryPath = join(dir, 'redacted-summary.md');
      writeFileSync(summaryPath, '');
      const basic = Buffer.from('bot:bot/pass-word-9').toString('base64');
      const leaky: IncidentSink = {
        name: 'hook gh/annot%secret-55',
        open: async () => ({ sink: 'hook gh/annot%secret-55', ok: false, message: `echo: X-Api-Key: gh/annot%secret-55, Authorization: Basic ${basic}, {"k":"gh\\/annot%secret-55"}` }),
      };
      const reporter = new GitHubReporter({ commands: out.stream, summaryPath });
      // The default scenario is a regression: rolled back, the incident fails, the summary quotes it.
      await runRollout({ reporter, incidents: [leaky] });
      const all = `${decode(out.text())}\n${out.text()}\n${readFileSync(summaryPath, 'utf8')}`;
      // The failure was reported (annotation and summary), with the secret replaced.
      expect(decode(out.text())).toContain('echo: X-Api-Key: [REDACTED], Authorization: [REDACTED]');
      expect(readFileSync(summaryPath, 'utf8')).toContain('[REDACTED]');
      for (const form of ['gh/annot%secret-55', 'gh/annot%25secret-55', 'gh\\/annot%secret-55', basic]) expect(all).not.toContain(form);
    } finally {
      clearRegisteredSecrets();
    }
  });
});
