import { Chalk } from 'chalk';
import { invalidInput } from '../errors.js';
import { ConfigMapStateStore, CorruptRecordError } from '../k8s/configmap-state-store.js';
import { connect } from '../k8s/connection.js';
import { findAnyOwnedCanaryRoutes, findOwnedCanaryRoutes } from '../k8s/router-factory.js';
import type { RouteState } from '../rollout/ports.js';
import { readLease } from '../k8s/lease.js';
import { targetNames } from '../policy/policy.js';
import type { RouterName } from '../policy/schema.js';
import { colorEnabled } from '../report/color.js';
import { renderStatus, statusView, type StatusView } from '../report/status-view.js';
import { rollbackHint } from '../rollout/abort.js';
import { systemClock } from '../rollout/clock.js';
import { FINAL_PHASES } from '../rollout/record.js';
import { parseNamespace, parseOutput, parseTargetName } from './parse-flags.js';

export interface StatusFlags {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  output?: string;
  /** Policy file whose spec.target names the canary Ingress (default: NAME-canary). */
  policy?: string;
  watch?: boolean;
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * 0 healthy or progressing · 3 the last rollout was rolled back · 4 aborted · its own code if it
 * failed · 5 a stop was requested and is not finished (traffic not confirmed on stable) · 7 (or 4
 * when an operator asked) stable was set back after promotion by the post-promotion watch.
 */
export function statusExitCode(view: StatusView): number {
  if (view.unfinishedStop) return 5;
  switch (view.phase) {
    case 'rolled-back':
      return 3;
    case 'aborted':
      return 4;
    case 'failed':
      return view.outcome?.exitCode ?? 1;
    case 'rolled-back-after-promotion':
      // 7 when the watch set stable back, 4 when an operator did.
      return view.outcome?.exitCode ?? 7;
    default:
      return 0;
  }
}

/** The router a record names, when it names one (no record carries `router` yet: this reads it once one does). */
function routerNamedBy(record: object): { router?: RouterName } {
  const router = (record as { router?: unknown }).router;
  return router === 'ingress-nginx' || router === 'gateway-api' ? { router } : {};
}

export async function statusCommand(name: string, flags: StatusFlags): Promise<number> {
  const target = parseTargetName(name);
  const format = parseOutput(flags.output);
  const conn = connect({ ...(flags.kubeconfig && { kubeconfig: flags.kubeconfig }), ...(flags.context && { context: flags.context }) });
  const namespace = parseNamespace(flags.namespace ?? conn.defaultNamespace);
  const store = new ConfigMapStateStore({ kc: conn.kc, namespace, target });
  // The policy (YAML and its schema) is loaded only when -p names one: its target section is all
  // status needs from it, and without -p the names are the defaults.
  const policy = flags.policy !== undefined ? (await import('../policy/loader.js')).loadPolicy(flags.policy) : undefined;
  const names = targetNames(target, policy?.target ?? {});
  const hintCtx = {
    target,
    namespace,
    ...(flags.context !== undefined && { context: flags.context }),
    ...(flags.kubeconfig !== undefined && { kubeconfig: flags.kubeconfig }),
    ...(flags.policy !== undefined && { policyPath: flags.policy }),
  };
  const tty = Boolean(process.stdout.isTTY);
  const c = new Chalk({ level: colorEnabled(tty) ? 1 : 0 });

  const read = async (): Promise<StatusView> => {
    let stored;
    try {
      stored = await store.load();
    } catch (err) {
      if (err instanceof CorruptRecordError) {
        throw invalidInput(`the rollout record of ${target} in namespace ${namespace} is corrupt: ${err.message}; \`${rollbackHint(hintCtx)}\` still works and rewrites it`);
      }
      throw err;
    }
    if (!stored) {
      throw invalidInput(`no rollout of ${target} in namespace ${namespace}: there is no ConfigMap ${target}-canary-rollout (check the name, -n and --context)`);
    }
    // Without -p the router is unknown: our routes of either kind (the record's rollout decides between them).
    const routes = policy
      ? findOwnedCanaryRoutes(policy.traffic, conn.kc, namespace, target, names)
      : findAnyOwnedCanaryRoutes(conn.kc, namespace, target, names, { id: stored.record.id, ...routerNamedBy(stored.record) });
    const [found, lease] = await Promise.all([routes, readLease(conn.kc, namespace, target)]);
    const owned = found.routes;
    warnAboutExtras(owned, found.kind, found.live);
    // The live weight is the one on the route this target's names point at, not whichever sorts first.
    const route = owned.find((i) => i.name === found.live);
    return statusView({
      record: stored.record,
      liveWeight: route ? (route.weight ?? 0) : null,
      ...(route && { live: { stoppedBy: route.stoppedBy, overrides: route.overrides } }),
      lease,
      now: systemClock.now(),
    });
  };
  let warned = '';
  // More than one of ours means one was left behind by a renamed canary Ingress, and it may still take traffic.
  const warnAboutExtras = (owned: readonly RouteState[], kind: string, live: string) => {
    const key = owned.map((i) => `${i.name}=${i.weight ?? '?'}`).join(',');
    if (owned.length < 2 || key === warned) return;
    warned = key;
    const list = owned.map((i) => `${i.name} (${i.weight ?? '?'}%)`).join(', ');
    process.stderr.write(
      `canary: warning: ${owned.length} canary ${kind === 'Ingress' ? 'Ingresses' : 'HTTPRoutes'} of ${target} in namespace ${namespace} carry our label: ${list}; the weight shown is ${live}'s; \`${rollbackHint(hintCtx)}\` sets every one of them to 0\n`,
    );
  };
  const show = (view: StatusView) =>
    format === 'json' ? `${JSON.stringify(view, null, 2)}\n` : `${renderStatus(view, systemClock.now(), { bold: c.bold, warn: c.yellow })}\n`;

  let view = await read();
  process.stdout.write(show(view));
  if (!flags.watch) return statusExitCode(view);

  // --watch: redraw when something changed, until the rollout ends or the user stops watching.
  let last = JSON.stringify({ ...view, age: '' });
  while ((!FINAL_PHASES.includes(view.phase) || view.unfinishedStop) && !flags.signal?.aborted) {
    await systemClock.sleep(flags.intervalMs ?? 2000, flags.signal);
    if (flags.signal?.aborted) break;
    view = await read();
    const now = JSON.stringify({ ...view, age: '' });
    if (now === last) continue;
    last = now;
    if (tty && format === 'text') process.stdout.write('\u001b[2J\u001b[H');
    process.stdout.write(show(view));
  }
  return statusExitCode(view);
}
