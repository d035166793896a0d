import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { EXIT, exitCodeOf, invalidInput, messageOf } from '../errors.js';
import { shippedPath } from '../paths.js';
import { redact, registerProxyEnv } from '../redaction/registry.js';
import { guardProcessOutput } from '../redaction/sinks.js';
import { runForcedExitHooks } from './forced-exit.js';

// Each command's module is imported only when that command runs: `--help` and `validate` must
// not pay for the Kubernetes client, and `rollback` must reach its first PATCH before anything
// that does not move traffic is loaded. In the bundle each import() below is a separate chunk,
// so keep command code out of this file's static imports.

function version(): string {
  try {
    return (JSON.parse(readFileSync(shippedPath('package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const outputOption = () => new Option('-o, --output <format>', 'text or json').default('text');

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('canary')
    .description('Canary rollouts on ingress-nginx, judged by Prometheus, with nothing installed in the cluster.')
    .version(version())
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('deploy')
    .description('roll a new image out as a canary: 10% → 25% → 50% → 100%, checking every minute')
    .argument('<name>', 'target: the stable Deployment/Service/Ingress name (e.g. checkout)')
    .requiredOption('--image <image>', 'the canary image')
    .option('-n, --namespace <namespace>', "namespace of the target (default: the kubeconfig context's, or \"default\")")
    .option('-p, --policy <file>', 'rollout policy (default: policies/default.yaml)')
    .option('--dry-run', 'touch no cluster: simulate every write and judge from --replay or --prometheus')
    .option('--resume', 'continue the unfinished rollout of NAME from its recorded step (after its deploy process died)')
    .option('--retry', 'start again from the first step after a rolled-back or aborted rollout of the same image (the new record links it)')
    .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <name>', 'kubeconfig context to use')
    .option('--replay <file>', 'answer Prometheus queries from a recording, on a virtual clock')
    .option('--prometheus <url>', 'Prometheus base URL (overrides the policy)')
    .option('--record <file>', 'write every Prometheus query and raw answer to a recording')
    .option('-v, --verbose', 'print every check as a table, not only those that did not pass')
    .option('--on-cancel <action>', 'on SIGTERM/SIGINT: "rollback" sends the canary to 0%, "leave" keeps its weight', 'rollback')
    .option('--no-incident', 'open no incident on rollback, even when the policy names incident sinks')
    .option('--commit-time <time>', "the deployed commit's time (RFC 3339), for the lead-time metric (default: $CANARY_COMMIT_TIME)")
    .addOption(outputOption())
    .action(async (name: string, flags) => setExit(await withCancellation(async (signal) => (await import('./deploy.js')).deployCommand(name, { ...flags, signal }))));

  program
    .command('backtest')
    .description('run a rollout on a virtual clock against Prometheus history, as if it had started at --from')
    .argument('<name>', 'target name (e.g. checkout)')
    .requiredOption('--from <time>', 'when the simulated rollout starts (RFC 3339)')
    .option('-n, --namespace <namespace>', 'namespace of the target', 'default')
    .option('-p, --policy <file>', 'rollout policy (default: policies/default.yaml)')
    .option('--prometheus <url>', 'Prometheus base URL (overrides the policy)')
    .option('--record <file>', 'write every query and raw answer to a recording (replay it with deploy --dry-run --replay)')
    .option('--image <image>', 'image name shown in the report', 'backtest')
    .option('--description <text>', 'free text stored in the recording')
    .option('-v, --verbose', 'print every check as a table')
    .addOption(outputOption())
    .action(async (name: string, flags) => setExit(await (await import('./backtest.js')).backtestCommand(name, flags)));

  const cluster = (cmd: Command) =>
    cmd
      .option('-n, --namespace <namespace>', "namespace of the target (default: the kubeconfig context's)")
      .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
      .option('--context <name>', 'kubeconfig context to use');

  cluster(
    program
      .command('status')
      .description("show a target's rollout from the record in the cluster: phase, step, weight, the last checks, what happens next")
      .argument('[name]', 'target name (e.g. checkout); leave out with --all'),
  )
    .option('-w, --watch', 'redraw when something changes, until the rollout ends')
    .option('-p, --policy <file>', "policy whose spec.target names the canary Ingress (default: NAME-canary)")
    .option('--all', 'every rollout record in the namespace (or with -A every namespace), one line each; exit 6 when one is stalled or left off 0%')
    .option('-A, --all-namespaces', 'with --all: every namespace')
    .addOption(outputOption())
    .action(async (name: string | undefined, flags) => {
      if (flags.all || flags.allNamespaces) {
        if (name !== undefined) throw invalidInput(`--all: expected no target name, got "${name}"`);
        return setExit(await (await import('./status-all.js')).statusAllCommand(flags));
      }
      if (name === undefined) throw invalidInput('status: expected a target name (e.g. `canary status checkout`), or --all for every rollout');
      setExit(await withCancellation(async (signal) => (await import('./status.js')).statusCommand(name, { ...flags, signal })));
    });

  cluster(
    program
      .command('rollback')
      .description('send all traffic back to stable now (one fenced PATCH, read back), record the abort, restore stable during a promotion, scale the canary down, verify stable')
      .argument('<name>', 'target name (e.g. checkout)'),
  )
    .requiredOption('--reason <text>', 'why: goes into the record, the Kubernetes Event and the incident')
    .option('-p, --policy <file>', 'policy naming target overrides and incident sinks (default: policies/default.yaml)')
    .option('--no-incident', 'open no incident')
    .option('--timeout <duration>', 'how long to keep driving the canary to 0% before exiting 5 (e.g. 30s, 2m)', '30s')
    .addOption(outputOption())
    .action(async (name: string, flags) => setExit(await (await import('./rollback.js')).rollbackFromFlags(name, flags)));

  // Operator controls, written into the cluster-held record and answered by the running deploy.
  const control = (cmd: Command) =>
    cluster(cmd)
      .option('-p, --policy <file>', 'policy whose spec.kubernetes sets API timeouts and retries')
      .option('--rollout <id>', 'the rollout id you mean (as `canary status` shows it): refused when the record holds another')
      .option('--timeout <duration>', 'how long to wait for the running deploy to acknowledge (e.g. 30s, 2m); exit 6 when none does', '30s')
      .addOption(outputOption());

  control(
    program
      .command('promote')
      .description('move the rollout on now: the current step (or its pause) ends at the next check without a breach')
      .argument('<name>', 'target name (e.g. checkout)'),
  )
    .option('--full', 'skip the remaining steps and go to the promotion')
    .option('--reason <text>', 'why: goes into the record')
    .action(async (name: string, flags) => setExit(await (await import('./promote.js')).promoteCommand(name, flags)));

  control(
    program
      .command('pause')
      .description('stop the rollout moving forward: its checks continue and a breach still rolls it back')
      .argument('<name>', 'target name (e.g. checkout)'),
  )
    .option('--reason <text>', 'why: goes into the record and `canary status`')
    .action(async (name: string, flags) => setExit(await (await import('./pause.js')).pauseCommand(name, flags)));

  control(
    program
      .command('resume')
      .description("end an operator's pause: the rollout moves forward again as its checks allow")
      .argument('<name>', 'target name (e.g. checkout)'),
  )
    .option('--reason <text>', 'why: goes into the record')
    .action(async (name: string, flags) => setExit(await (await import('./resume.js')).resumeCommand(name, flags)));

  cluster(
    program
      .command('doctor')
      .description('check everything a rollout of NAME depends on, writing nothing: objects, RBAC, router pitfalls, Prometheus data and resolution')
      .argument('<name>', 'target name (e.g. checkout)'),
  )
    .option('-p, --policy <file>', 'rollout policy (default: policies/default.yaml)')
    .option('--prometheus <url>', 'Prometheus base URL (overrides the policy)')
    .option('--no-migration', 'leave out the Gateway API HTTPRoute equivalent of the ingress-nginx canary')
    .addOption(outputOption())
    .action(async (name: string, flags) => setExit(await (await import('./doctor.js')).doctorCommand(name, flags)));

  program
    .command('validate')
    .description('check a policy file; every problem is listed with its path')
    .argument('<file>', 'policy YAML')
    .addOption(outputOption())
    .action(async (file: string, flags) => setExit((await import('./validate.js')).validateCommand(file, flags)));

  return program;
}

/** SIGINT/SIGTERM (a cancelled CI job) aborts the rollout cleanly; a second signal exits at once. */
async function withCancellation(run: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const controller = new AbortController();
  let forced = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (forced) process.exit(EXIT.aborted);
    if (controller.signal.aborted) {
      forced = true;
      process.stderr.write(`canary: second ${sig}: recording where the rollout stopped, then exiting (send again to exit without recording)\n`);
      void runForcedExitHooks(2000).finally(() => process.exit(EXIT.aborted));
      return;
    }
    process.stderr.write(`canary: ${sig} received: stopping the rollout (send again to exit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await run(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * `canary backtest … | head -1`: once the reader has gone, the rest of the output has nowhere to
 * go. Drop it and let the command finish, so it still ends with its own exit code, quietly.
 */
function toleratesClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    // Writes still report done, so whoever waits on one (the launcher drains stdout) goes on.
    process.stdout.write = ((_chunk: unknown, encoding?: unknown, callback?: unknown) => {
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
      return true;
    }) as typeof process.stdout.write;
  });
}

export async function main(argv: string[]): Promise<void> {
  // The redaction boundary's backstop: proxy credentials known from the start, and nothing
  // reaches stdout or stderr without passing redact() (src/redaction/).
  registerProxyEnv();
  guardProcessOutput();
  toleratesClosedStdout();
  let code: number = EXIT.ok;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message; help and version are successes, the rest bad flags.
      code = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? EXIT.ok : EXIT.invalidInput;
    } else {
      process.stderr.write(redact(`canary: ${messageOf(err)}\n`));
      code = exitCodeOf(err);
    }
  }
  process.exitCode = code;
}
