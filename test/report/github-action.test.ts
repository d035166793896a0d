import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The shipped composite action and example workflow, read as GitHub reads them; the action's
// scripts are run with bash the way the runner runs them (inputs arrive as environment variables).

interface Step {
  name?: string;
  id?: string;
  run?: string;
  'working-directory'?: string;
  env?: Record<string, string>;
}

const action = parse(readFileSync(new URL('../../action.yml', import.meta.url), 'utf8')) as { runs: { steps: Step[] } };
const workflow = parse(readFileSync(new URL('../../examples/github-actions/canary.yml', import.meta.url), 'utf8')) as {
  concurrency?: unknown;
  jobs: Record<string, { concurrency?: unknown; steps: Step[] }>;
};

const scriptSteps = action.runs.steps.filter((s) => s.run !== undefined);
const canaryStep = scriptSteps.find((s) => s.id === 'canary')!;

let dir: string;
let actionPath: string;
let fakeBin: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'canary-action-'));
  // A stand-in for the action's checkout: bin/canary prints the arguments it was given.
  actionPath = join(dir, 'action');
  mkdirSync(join(actionPath, 'bin'), { recursive: true });
  writeFileSync(join(actionPath, 'bin/canary'), 'console.log(JSON.stringify({ argv: process.argv.slice(2), cwd: process.cwd() }));\n');
  // An npm that fails loudly, so an install or build on the runner shows.
  fakeBin = join(dir, 'fake-bin');
  mkdirSync(fakeBin);
  writeFileSync(join(fakeBin, 'npm'), '#!/bin/sh\necho "npm $* in $(pwd)"\nexit 42\n');
  chmodSync(join(fakeBin, 'npm'), 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a step's script as the runner would: bash, in the workspace, with the step's inputs as env. */
function runStep(step: Step, env: Record<string, string>, at = actionPath) {
  const workspace = join(dir, 'workspace');
  mkdirSync(workspace, { recursive: true });
  const result = spawnSync('bash', ['-e', '-c', step.run ?? ''], {
    cwd: workspace,
    env: { PATH: `${fakeBin}:${process.env['PATH'] ?? ''}`, GITHUB_ACTION_PATH: at, ...env },
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const inputs = {
  CANARY_COMMAND: 'deploy',
  CANARY_TARGET: 'checkout',
  CANARY_IMAGE: 'ghcr.io/acme/checkout:1a2b3c',
  CANARY_POLICY: '',
  CANARY_NAMESPACE: 'shop',
  CANARY_DRY_RUN: 'false',
  CANARY_REPLAY: '',
  CANARY_PROMETHEUS: '',
  CANARY_ON_CANCEL: 'rollback',
  CANARY_INCIDENTS: 'true',
  CANARY_REASON: '',
  CANARY_VERBOSE: 'false',
  CANARY_ARGS: '',
};

describe('action.yml', () => {
  it('uses no ${{ }} expression inside its scripts (container jobs map only $GITHUB_ACTION_PATH)', () => {
    expect(scriptSteps.length).toBeGreaterThanOrEqual(1);
    for (const step of scriptSteps) expect(step.run).not.toContain('${{');
    for (const step of action.runs.steps) expect(step['working-directory'] ?? '').not.toContain('github.action_path');
  });

  it('installs and builds nothing on the runner: no step runs npm, npx or tsc', () => {
    for (const step of scriptSteps) expect(step.run).not.toMatch(/\b(npm|npx|tsc|yarn|pnpm)\b/);
  });

  it('runs the checked-in bundle from a checkout of the shipped files alone, with no node_modules', () => {
    // What GitHub fetches for `uses: acme/canary@v1` is the repository at that tag: the committed
    // bundle and the files it reads, and no node_modules anywhere above it.
    const checkout = join(dir, 'checkout');
    for (const part of ['package.json', 'bin', 'bundle', 'policies', 'examples/recordings']) {
      cpSync(fileURLToPath(new URL(`../../${part}`, import.meta.url)), join(checkout, part), { recursive: true });
    }
    const replay = join(checkout, 'examples/recordings/error-regression.json');
    const { status, stdout, stderr } = runStep(canaryStep, { ...inputs, CANARY_DRY_RUN: 'true', CANARY_REPLAY: replay, CANARY_INCIDENTS: 'false' }, checkout);
    expect(stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find/);
    expect(stdout).toContain('ROLLED BACK: error-rate');
    expect(status).toBe(3);
  });

  it('runs the CLI from $GITHUB_ACTION_PATH with the inputs as arguments', () => {
    const { status, stdout } = runStep(canaryStep, { ...inputs, CANARY_DRY_RUN: 'true', CANARY_REASON: 'ignored for deploy' });
    expect(status).toBe(0);
    const ran = JSON.parse(stdout) as { argv: string[] };
    expect(ran.argv).toEqual(['deploy', 'checkout', '--namespace', 'shop', '--image', 'ghcr.io/acme/checkout:1a2b3c', '--on-cancel', 'rollback', '--dry-run']);
  });

  it('never echoes an input into a workflow command', () => {
    const hostile = 'promote"\n::add-mask::x\n::warning::injected';
    const { status, stdout, stderr } = runStep(canaryStep, { ...inputs, CANARY_COMMAND: hostile });
    expect(status).toBe(2);
    expect(stdout).toBe('::error title=canary action::input command: expected "deploy", "rollback", "promote", "pause" or "resume"\n');
    expect(`${stdout}${stderr}`).not.toContain('injected');
  });
});

describe('action.yml: controls for workflow_dispatch (issue 19)', () => {
  const control = { ...inputs, CANARY_IMAGE: '', CANARY_FULL: 'false', CANARY_ROLLOUT_ID: '', CANARY_TIMEOUT: '' };
  const argv = (env: Record<string, string>) => {
    const { status, stdout } = runStep(canaryStep, env);
    expect(status).toBe(0);
    return (JSON.parse(stdout) as { argv: string[] }).argv;
  };

  it('promote, with full, the rollout id, the reason and the timeout as flags', () => {
    expect(argv({ ...control, CANARY_COMMAND: 'promote', CANARY_FULL: 'true', CANARY_ROLLOUT_ID: 'checkout-20260115T100000Z', CANARY_REASON: 'smoke ok', CANARY_TIMEOUT: '1m' })).toEqual([
      'promote', 'checkout', '--namespace', 'shop', '--full', '--reason', 'smoke ok', '--rollout', 'checkout-20260115T100000Z', '--timeout', '1m',
    ]);
  });

  it('pause and resume take the reason; full means nothing to them', () => {
    expect(argv({ ...control, CANARY_COMMAND: 'pause', CANARY_FULL: 'true', CANARY_REASON: 'dashboards' })).toEqual(['pause', 'checkout', '--namespace', 'shop', '--reason', 'dashboards']);
    expect(argv({ ...control, CANARY_COMMAND: 'resume' })).toEqual(['resume', 'checkout', '--namespace', 'shop']);
  });
});

describe('examples/github-actions/gates.yml', () => {
  const gates = parse(readFileSync(new URL('../../examples/github-actions/gates.yml', import.meta.url), 'utf8')) as {
    concurrency?: unknown;
    on: { workflow_dispatch: { inputs: Record<string, { options?: string[] }> } };
    jobs: Record<string, { concurrency?: unknown; steps: (Step & { with?: Record<string, string> })[] }>;
  };

  it('offers promote, pause and resume, and never queues a control behind the rollout it is for', () => {
    expect(gates.on.workflow_dispatch.inputs['command']?.options).toEqual(['promote', 'pause', 'resume']);
    expect(gates.concurrency).toBeUndefined();
    expect(gates.jobs['control']?.concurrency).toBeUndefined();
    const step = gates.jobs['control']?.steps.find((s) => s.id === 'control');
    expect(step?.with).toMatchObject({ command: '${{ inputs.command }}', full: '${{ inputs.full }}', 'rollout-id': '${{ inputs.rollout-id }}' });
  });
});

describe('examples/github-actions/canary.yml', () => {
  it('serialises canary rollouts, but never queues the manual rollback behind one', () => {
    // A workflow-level group would hold the rollback until the deploy it should stop had ended.
    expect(workflow.concurrency).toBeUndefined();
    expect(workflow.jobs['canary']?.concurrency).toEqual({ group: 'canary-checkout', 'cancel-in-progress': false });
    expect(workflow.jobs['rollback']?.concurrency).toBeUndefined();
    const rollback = workflow.jobs['rollback']?.steps.find((s) => s.name === 'canary rollback') as { with?: Record<string, string> } | undefined;
    expect(rollback?.with?.['command']).toBe('rollback');
  });
});
