import { CanaryError, messageOf } from '../errors.js';
import {
  oursAtZero,
  type CallBudget,
  type Clock,
  type OwnRouteState,
  type RouteState,
  type ScaleDownResult,
  type StableStatus,
  type TrafficRouter,
  type TrafficState,
  type Workloads,
} from './ports.js';

// The stop's first transition and its words. The stop machine (stop-machine.ts) owns every stop
// and runs `stopTraffic` as its first transition: every route of ours to 0% with the stop marker,
// re-read, and again, until a read shows 0% or the stop deadline passes (then nothing else
// happens: exit 5, saying where traffic may be) — and, for a deploy, only while its Lease is
// known to be ours (`mayAct`). `finishStop` is what `canary rollback` still does for a rollout
// already over (a repeated rollback, a missing or corrupt record): stable back to its image if a
// promotion had begun, the canary scaled down (never while any route still sends it traffic),
// stable verified.

/** `canary rollback --timeout`: the person at the keyboard learns within seconds where traffic is. */
export const DEFAULT_STOP_DEADLINE_MS = 30_000;
/** A deploy's own stop: long enough to ride out a control-plane restart (spec.kubernetes.stopDeadline). */
export const DEFAULT_DEPLOY_STOP_DEADLINE_MS = 300_000;
/** Between two tries of the 0% write: short, because every second is traffic on a bad canary. */
const RETRY_PAUSE_MS = [250, 500, 1000, 2000] as const;
/** The least time worth one more try of the 0% write and its read-back. */
const MIN_TRY_MS = 100;

/** What a pasted hint needs so it acts on the same cluster, namespace and policy as this run. */
export interface CommandContext {
  target: string;
  namespace: string;
  context?: string;
  kubeconfig?: string;
  /** The policy file, when one was given (-p). */
  policyPath?: string;
}

/** Quotes a word for a POSIX shell only when it needs it. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function clusterFlags(ctx: CommandContext): string {
  return [
    `-n ${shellWord(ctx.namespace)}`,
    ...(ctx.context ? [`--context ${shellWord(ctx.context)}`] : []),
    ...(ctx.kubeconfig ? [`--kubeconfig ${shellWord(ctx.kubeconfig)}`] : []),
  ].join(' ');
}

const policyFlag = (ctx: CommandContext) => (ctx.policyPath ? ` -p ${shellWord(ctx.policyPath)}` : '');

/** `canary rollback checkout -n shop --context prod -p policy.yaml --reason "..."`, ready to paste. */
export function rollbackHint(ctx: CommandContext): string {
  return `canary rollback ${shellWord(ctx.target)} ${clusterFlags(ctx)}${policyFlag(ctx)} --reason '...'`;
}

export function resumeHint(ctx: CommandContext, image: string): string {
  return `canary deploy ${shellWord(ctx.target)} ${clusterFlags(ctx)}${policyFlag(ctx)} --image ${shellWord(image)} --resume`;
}

export function undoHint(ctx: CommandContext, deployment: string): string {
  return `kubectl rollout undo deployment/${shellWord(deployment)} ${clusterFlags(ctx)}`;
}

export interface TrafficStop {
  /** A read after the last write showed every route of ours at 0% with no header/cookie routing. */
  confirmed: boolean;
  /** Our routes as the first write that got through found them; null when none got through. */
  before: OwnRouteState[] | null;
  /** The last read; null when no read got through. */
  after: TrafficState | null;
  /** The last failure (undefined when none). */
  error?: unknown;
  /** The failure is one that more tries would not fix (403, 400, a webhook): given up early. */
  permanent: boolean;
  attempts: number;
}

export interface StopTrafficOptions {
  router: TrafficRouter;
  clock: Clock;
  /** Written on every route as the stop marker: who stops, and when. */
  marker: string;
  deadlineMs?: number;
  /** The longest one call may take (the policy's Kubernetes timeout); bounded by the time left. */
  callTimeoutMs: number;
  /** Told about every failed try, so an operator sees the stop is still trying. */
  onRetry?: (message: string) => void;
  /**
   * Null while this stopper may write; otherwise why not (the deploy's Lease is past its renew
   * deadline). A refused try writes nothing; the stop waits for the refusal to lift (the Lease
   * renewed) until its deadline.
   */
  mayAct?: () => string | null;
}

function permanentFailure(err: unknown): boolean {
  return err instanceof CanaryError && err.kind !== 'unreachable';
}

/**
 * Writes 0% (with the stop marker) to every route of ours and reads it back, again and again,
 * until a read shows 0% or the deadline passes. Each call is one attempt bounded by the time
 * left, so an API server that hangs cannot hold the stop past its deadline.
 */
export async function stopTraffic(opts: StopTrafficOptions): Promise<TrafficStop> {
  const { router, clock, marker } = opts;
  const deadline = clock.now() + (opts.deadlineMs ?? DEFAULT_STOP_DEADLINE_MS);
  const budget = (): CallBudget => ({ timeoutMs: Math.max(1, Math.min(opts.callTimeoutMs, deadline - clock.now())) });
  const result: TrafficStop = { confirmed: false, before: null, after: null, permanent: false, attempts: 0 };
  let refused: string | null = null;
  for (;;) {
    const refusal = opts.mayAct?.() ?? null;
    if (refusal !== null) {
      if (refusal !== refused) opts.onRetry?.(`${refusal}; the 0% write waits for the Lease, for up to ${Math.max(0, Math.ceil((deadline - clock.now()) / 1000))}s more (stop deadline)`);
      refused = refusal;
      result.error = new CanaryError('unreachable', refusal);
    } else {
      refused = null;
      result.attempts += 1;
      try {
        await tryOnce(router, marker, budget, result);
        if (result.confirmed) return result;
      } catch (err) {
        result.error = err;
        if (permanentFailure(err)) {
          result.permanent = true;
          return result;
        }
        const left = Math.max(0, Math.ceil((deadline - clock.now()) / 1000));
        opts.onRetry?.(`the 0% write or its read-back failed (try ${result.attempts}): ${messageOf(err)}; still trying, for up to ${left}s more (stop deadline)`);
      }
    }
    const left = deadline - clock.now();
    if (left <= MIN_TRY_MS) return result;
    await clock.sleep(Math.min(RETRY_PAUSE_MS[Math.min(Math.max(result.attempts, 1) - 1, RETRY_PAUSE_MS.length - 1)] ?? 2000, left - MIN_TRY_MS));
    // A try with almost no time left could only fail, and would hide the last real failure.
    if (deadline - clock.now() < MIN_TRY_MS) return result;
  }
}

/** One 0% write and its read-back; `result.confirmed` when the read shows it. */
async function tryOnce(router: TrafficRouter, marker: string, budget: () => CallBudget, result: TrafficStop): Promise<void> {
  const found = await router.stop(marker, budget());
  result.before ??= found;
  // Re-read: what we report and act on is what the API holds, never what we asked for.
  result.after = await router.inspect(budget());
  if (oursAtZero(result.after)) {
    result.confirmed = true;
    delete result.error;
    return;
  }
  // Raised between our write and our read (a deploy whose raise was already past its fence, or
  // a hand edit): write again.
  result.error = new CanaryError('unexpected', `a canary route was set above 0% again after the stop: ${describeRoutes(result.after.ours)}`);
}

function describeRoutes(routes: readonly RouteState[]): string {
  return routes.map((r) => `${r.name} ${r.weight ?? '?'}%${r.overrides.length ? ' (+header/cookie routing)' : ''}`).join(', ');
}

/** Routes we did not make that can still send a request to the canary. */
export function foreignTraffic(state: TrafficState | null): RouteState[] {
  return (state?.foreign ?? []).filter((r) => (r.weight ?? 0) > 0 || r.overrides.length > 0);
}

/**
 * Where traffic is, in words, from the last read. Never "all traffic on stable" unless the read
 * showed it, counting routes that are not ours.
 */
export function describeTraffic(stop: TrafficStop, ctx: CommandContext, lastSet?: string): string {
  if (stop.confirmed) {
    const foreign = foreignTraffic(stop.after);
    const ours = stop.after?.ours.length ? 'canary at 0%' : 'no canary route of ours';
    if (foreign.length === 0) return `${ours}, all traffic on stable`;
    return `${ours}; traffic is NOT all on stable: ${foreign.map((r) => `Ingress ${r.name} (not ours) sends ${r.weight ?? '?'}%${r.overrides.length ? ' and header/cookie-matched requests' : ''} to the canary`).join('; ')}`;
  }
  const seen = stop.after ? `last read: ${describeRoutes(stop.after.ours)}` : lastSet ? `no read got through; ${lastSet}` : 'no read got through';
  const why = stop.error === undefined ? '' : `: ${messageOf(stop.error)}`;
  return `canary weight NOT confirmed at 0% (${seen})${why}; the canary may still get that share of traffic; run \`${rollbackHint(ctx)}\``;
}

export interface StopFinishOptions {
  workloads: Workloads;
  clock: Clock;
  callTimeoutMs: number;
  /** A promotion had begun: stable goes back to this image (null: the record does not know it). */
  restoreStable?: { image: string | null; stableDeployment: string };
  /** Whether anything still sends traffic to the canary (a route not ours): then it keeps its pods. */
  canaryStillRouted: boolean;
  /** Who stops, and when: written on stable when it is set back. */
  marker?: string;
  ctx: CommandContext;
  say: (level: 'info' | 'warn' | 'error', line: string) => void;
}

export interface StopFinish {
  restore?: { image: string | null; done: boolean; message: string };
  scaled: ScaleDownResult | 'kept' | null;
  stable: StableStatus | null;
}

/**
 * What comes after a read showed 0%: stable back to its recorded image (a promotion had begun),
 * the canary scaled down, stable verified. Call it only with a confirmed stop.
 */
export async function finishStop(opts: StopFinishOptions): Promise<StopFinish> {
  const { workloads, say, ctx } = opts;
  const budget = (): CallBudget => ({ timeoutMs: opts.callTimeoutMs });
  const out: StopFinish = { scaled: null, stable: null };
  if (opts.restoreStable) {
    const { image, stableDeployment } = opts.restoreStable;
    out.restore = await restoreStable(workloads, image, stableDeployment, ctx, opts.marker ?? `stopped at ${new Date(opts.clock.now()).toISOString()}`);
    say(out.restore.done ? 'info' : 'error', out.restore.message);
  }
  if (opts.canaryStillRouted) {
    out.scaled = 'kept';
    say('warn', 'the canary Deployment keeps its pods: a route that is not ours still sends it traffic');
  } else {
    try {
      out.scaled = await workloads.scaleDownCanary(budget());
    } catch (err) {
      say('warn', `could not scale the canary down: ${messageOf(err)}`);
    }
  }
  try {
    out.stable = await workloads.verifyStable(budget());
  } catch (err) {
    out.stable = { available: false, message: `stable could not be verified: ${messageOf(err)}` };
  }
  return out;
}

async function restoreStable(workloads: Workloads, image: string | null, deployment: string, ctx: CommandContext, marker: string): Promise<{ image: string | null; done: boolean; message: string }> {
  const running = async () => workloads.stableImage().catch(() => null);
  if (image === null) {
    const now = await running();
    return {
      image,
      done: false,
      message: `the record does not say which image stable ran before the promotion; stable runs ${now ?? 'an image that could not be read'}; undo the promotion with \`${undoHint(ctx, deployment)}\``,
    };
  }
  try {
    // Written even when stable already runs `image`: a promotion write read before it then loses.
    await workloads.promoteStable(image, { mark: marker });
    return { image, done: true, message: `stable Deployment ${deployment} set back to ${image} and available` };
  } catch (err) {
    const now = await running();
    return {
      image,
      done: false,
      message: `stable Deployment ${deployment} could not be set back to ${image}: ${messageOf(err)}; it runs ${now ?? 'an image that could not be read'}; finish with \`${rollbackHint(ctx)}\` (or \`${undoHint(ctx, deployment)}\`)`,
    };
  }
}
