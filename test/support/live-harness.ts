import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { inflateQueries } from '../../src/k8s/record-queries.js';
import { startFakeKube, type FakeKube, type FakeKubeOptions, type FaultHandle, type KubeObject } from './fake-kube/server.js';
import { seedCheckout, type SeededCheckout } from './fake-kube/seed.js';
import { scalar, startFakePrometheus, vector, type FakePrometheus, type Reply, type SeenRequest } from './fake-prometheus.js';
import { REPO, type CliRun } from './run-cli.js';

// One world per test file for live rollouts: the fake Kubernetes API with checkout seeded in
// namespace shop, a fake Prometheus whose answers follow a switchable scenario, and a policy fast
// enough for tests (3 steps of 750 ms, a check every 250 ms). The CLI runs as a child process with
// KUBECONFIG pointing at the fake, exactly as a CI job would run it.
//
// Tests never depend on how far a rollout got in wall-clock time: a test that needs the rollout at
// a step holds it there (`holdAt`: checks at or above that weight see no traffic, so they are
// inconclusive and the step cannot advance), waits for the weight it reads from the API, acts, and
// then releases it. Requests the test needs in flight are held by a 'hold' fault until it says so.

export const NAMESPACE = 'shop';
export const TARGET = 'checkout';
export const NEW_IMAGE = 'registry.example.com/shop/checkout:2.0.0';
export const DEPLOY_ARGS = ['deploy', TARGET, '-n', NAMESPACE, '--image', NEW_IMAGE] as const;
export const CANARY_INGRESS = 'checkout-canary';
export const RECORD_CONFIGMAP = 'checkout-canary-rollout';
export const LEASE = 'checkout-canary';
export const WEIGHT_ANNOTATION = 'nginx.ingress.kubernetes.io/canary-weight';
export const CANARY_ANNOTATION = 'nginx.ingress.kubernetes.io/canary';
/** A GitHub run, so that the holder of the lease and the record's startedBy are predictable. */
/** `canary rollback checkout -n <namespace> --reason <reason>`, plus any flags: every test's rollback command. */
export const rollbackCommand = (namespace: string = NAMESPACE, reason = 'pager', ...extra: string[]): string[] => ['rollback', TARGET, '-n', namespace, '--reason', reason, ...extra];
/** `canary rollback checkout -n shop --reason pager`. */
export const ROLLBACK: readonly string[] = rollbackCommand();

export const RUN_URL = 'https://github.com/acme/shop/actions/runs/4242';
export const RUN_ENV = { GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/shop', GITHUB_RUN_ID: '4242' };

/**
 * What the fake Prometheus reports: both sides healthy, the canary failing 12% of requests, or no
 * traffic on either side (every check inconclusive: a step that cannot advance, which is how a test
 * holds a rollout at a step until it decides to release it).
 */
export type MetricsScenario = 'healthy' | 'canary-errors' | 'no-traffic';

interface Side {
  requests: number;
  errors: number;
  p95: number;
}

const SIDES: Record<MetricsScenario, { canary: Side; stable: Side }> = {
  healthy: { canary: { requests: 120, errors: 0, p95: 0.2 }, stable: { requests: 1080, errors: 2, p95: 0.19 } },
  'canary-errors': { canary: { requests: 100, errors: 12, p95: 0.21 }, stable: { requests: 900, errors: 2, p95: 0.19 } },
  'no-traffic': { canary: { requests: 0, errors: 0, p95: 0.2 }, stable: { requests: 0, errors: 0, p95: 0.19 } },
};

/** Answers the ingress-nginx preset's queries by their shape (see test/support/scripted-metrics.ts). */
export function answer(scenario: MetricsScenario, req: SeenRequest): Reply {
  const promql = req.params['query'] ?? '';
  // The deploy preflight reads Prometheus's clock; this one shares the test's.
  if (promql === 'time()') return scalar(Date.now() / 1000);
  const canary = promql.includes('canary!=""') || /pod=~"[^"]*canary/.test(promql);
  const side = SIDES[scenario][canary ? 'canary' : 'stable'];
  if (promql.includes('container_memory')) return vector([{ value: canary ? 200e6 : 210e6 }]);
  if (promql.includes('container_cpu')) return vector([{ value: canary ? 0.1 : 0.9 }]);
  if (promql.startsWith('histogram_quantile')) return vector([{ value: side.p95 }]);
  if (promql.includes('status=~"5..')) return vector([{ value: side.errors }]);
  if (promql.includes('nginx_ingress_controller_requests')) return vector([{ value: side.requests }]);
  return { status: 400, json: { status: 'error', errorType: 'bad_data', error: `live-harness does not know the query ${promql}` } };
}

export interface PolicyOptions {
  /** The steps (default: 10%, 25% and 50%, three checks each). */
  steps?: readonly { weight: number; duration: string }[];
  /**
   * spec.kubernetes.leaseDuration (default 60s: the deploy stops when it cannot renew within 2/3
   * of it, and a loaded 2-core machine can starve a process for seconds).
   */
  leaseDuration?: string;
  /** spec.kubernetes.attempts: tries per API call (default 3). */
  attempts?: number;
  /** spec.incidents, as YAML list items indented for it, e.g. '    - { type: webhook, url: http://127.0.0.1:1234/ }' (default: none). */
  incidents?: readonly string[];
  /** spec.target, as YAML lines indented for it, e.g. '    headerRouting: { header: X-Canary, value: always }'. */
  target?: readonly string[];
  /** spec.interval, also the analysis window (default 250ms). */
  interval?: string;
  /** spec.analysis.inconclusiveLimit (default 1000, so a held step waits for its release). */
  inconclusiveLimit?: number;
  /** spec.kubernetes.readyTimeout (default 10s). */
  readyTimeout?: string;
  /**
   * spec.kubernetes.timeout (default 20s). Also spec.prometheus.timeout. The fake servers share a
   * process with the test runner: on a loaded machine a short timeout fails calls that were merely
   * slow, so tests about giving up inject errors rather than rely on timeouts.
   */
  kubeTimeout?: string;
  /** spec.kubernetes.stopDeadline: how long a stopping deploy keeps driving the canary to 0%. */
  stopDeadline?: string;
  /** spec.smokeTests, as YAML lines indented for it, e.g. '    tests: [{ name: health, url: "http://..." }]'. */
  smokeTests?: readonly string[];
  /** spec.hooks, as YAML list items indented for it, e.g. '    - { name: check, at: pre-rollout, command: [./check.sh] }'. */
  hooks?: readonly string[];
}

/** Two steps of one check each: for tests about the API rather than the plan. */
export const SHORT_STEPS = [
  { weight: 10, duration: '250ms' },
  { weight: 50, duration: '250ms' },
] as const;

export function policyYaml(prometheusUrl: string, opts: PolicyOptions = {}): string {
  const steps = opts.steps ?? [
    { weight: 10, duration: '750ms' },
    { weight: 25, duration: '750ms' },
    { weight: 50, duration: '750ms' },
  ];
  return [
    'apiVersion: canary/v1',
    'kind: RolloutPolicy',
    'metadata:',
    '  name: live-e2e',
    'spec:',
    `  interval: ${opts.interval ?? '250ms'}`,
    '  steps:',
    ...steps.map((s) => `    - { weight: ${s.weight}, duration: ${s.duration} }`),
    '  analysis:',
    `    window: ${opts.interval ?? '250ms'}`,
    // A window ends at its tick: the first check of a step judges exactly the step's first interval.
    '    evaluationDelay: 0s',
    '    minRequests: 5',
    `    inconclusiveLimit: ${opts.inconclusiveLimit ?? 1000}`,
    // Threshold judges, named here so the test does not follow changes to the shipped default.
    '    metrics:',
    '      - { name: error-rate, type: error-rate, judge: threshold, critical: true, max: 5%, maxIncrease: 3% }',
    '      - { name: p95-latency, type: latency, judge: threshold, critical: true, quantile: 0.95, max: 2s, maxRatio: 1.5 }',
    '      - { name: memory, type: query, query: memory, unit: bytes, critical: false }',
    '      - { name: cpu, type: query, query: cpu, unit: cores, critical: false }',
    '  prometheus:',
    `    url: ${prometheusUrl}`,
    `    timeout: ${opts.kubeTimeout ?? '20s'}`,
    '    retries: 0',
    '  kubernetes:',
    `    attempts: ${opts.attempts ?? 3}`,
    `    timeout: ${opts.kubeTimeout ?? '20s'}`,
    `    leaseDuration: ${opts.leaseDuration ?? '60s'}`,
    ...(opts.stopDeadline ? [`    stopDeadline: ${opts.stopDeadline}`] : []),
    `    readyTimeout: ${opts.readyTimeout ?? '10s'}`,
    '    pollInterval: 100ms',
    ...(opts.incidents?.length ? ['  incidents:', ...opts.incidents] : []),
    ...(opts.target?.length ? ['  target:', ...opts.target] : []),
    ...(opts.smokeTests?.length ? ['  smokeTests:', ...opts.smokeTests] : []),
    ...(opts.hooks?.length ? ['  hooks:', ...opts.hooks] : []),
    '',
  ].join('\n');
}

/** A CLI child process the test can signal while it runs. */
export interface CliProcess {
  readonly child: ChildProcess;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  readonly done: Promise<CliRun & { signal: NodeJS.Signals | null }>;
}

/** Spawns bin/canary asynchronously: the fake servers live in this process and must keep answering. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(process.execPath, ['bin/canary', ...args], {
    cwd: REPO,
    env: { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, GITHUB_ACTIONS: undefined, GITHUB_REPOSITORY: undefined, GITHUB_RUN_ID: undefined, GITHUB_RUN_ATTEMPT: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const done = new Promise<CliRun & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/** The one waiter (test/support/wait.ts), here too for the live tests that import it with the harness. */
export { waitFor } from './wait.js';

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** A policy file other than the world's default one. */
  policy?: string;
}

export interface LiveWorld {
  readonly fake: FakeKube;
  readonly prom: FakePrometheus;
  readonly seeded: SeededCheckout;
  readonly dir: string;
  readonly policyPath: string;
  /** KUBECONFIG for the CLI, plus the GitHub run identity. */
  readonly env: NodeJS.ProcessEnv;
  /**
   * KUBECONFIG for a second machine whose requests the fake can tell apart: it sends no token
   * (the fake serves anonymous requests), so its requests are recorded with credentials 'absent'.
   */
  readonly otherMachineEnv: NodeJS.ProcessEnv;
  setScenario(scenario: MetricsScenario): void;
  /**
   * Holds the rollout at the first step whose weight is at least `weight`: checks taken while the
   * canary Ingress routes that much see no traffic, so the step cannot advance until `release()`.
   */
  holdAt(weight: number): void;
  /** Lets a held rollout go on (with the current scenario's answers). */
  release(): void;
  /** Holds requests matching `fault` in the fake API server until the returned release() is called. */
  holdRequests(fault: { method?: string; pathPattern?: string | RegExp; times?: number }): FaultHandle & { release(): void };
  /** Writes another policy file into the world's directory; returns its path. */
  writePolicy(name: string, opts: PolicyOptions): Promise<string>;
  /** Starts a CLI command; deploy and rollback get the test policy. */
  start(args: readonly string[], opts?: StartOptions): CliProcess;
  run(args: readonly string[], opts?: StartOptions): Promise<CliRun & { signal: NodeJS.Signals | null }>;
  /** `canary deploy checkout -n shop --image NEW_IMAGE -p policy ...extra`, started. */
  deploy(extra?: readonly string[], opts?: StartOptions): CliProcess;
  canaryIngress(): KubeObject | undefined;
  /** The canary-weight annotation of our canary Ingress as stored, undefined when there is none. */
  weight(): string | undefined;
  /** The rollout record as stored in the ConfigMap, undefined when missing or unparsable. */
  record(): RolloutRecord | undefined;
  /** Writes apart from SelfSubjectAccessReviews (which are questions, not changes). */
  changes(): { method: string; path: string }[];
  /** The same, only from the second machine (otherMachineEnv). */
  otherMachineChanges(): { method: string; path: string }[];
  /** True when the rollout Lease exists and its holder stopped renewing it longer than its duration ago. */
  leaseExpired(): boolean;
  /** Restores a fresh world for the next test: objects, allow-list, faults, scenario. */
  reset(): void;
  stop(): Promise<void>;
}

const withPolicy = (args: readonly string[], policyPath: string): string[] =>
  args[0] === 'deploy' || args[0] === 'rollback' ? [...args, '-p', policyPath] : [...args];

function anonymousKubeconfig(server: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'current-context: other-machine',
    'clusters:',
    `  - name: fake-kube`,
    `    cluster: { server: "${server}", insecure-skip-tls-verify: true }`,
    'users:',
    '  - name: nobody',
    '    user: {}',
    'contexts:',
    '  - name: other-machine',
    '    context: { cluster: fake-kube, user: nobody }',
    '',
  ].join('\n');
}

export async function startLiveWorld(options: FakeKubeOptions = {}): Promise<LiveWorld> {
  const fake = await startFakeKube({ controllerDelayMs: 20, ...options });
  let scenario: MetricsScenario = 'healthy';
  let holdWeight: number | undefined;
  let held: (() => void)[] = [];
  const liveWeight = () => Number(fake.get('Ingress', NAMESPACE, CANARY_INGRESS)?.metadata?.annotations?.[WEIGHT_ANNOTATION] ?? 0);
  const handler = (req: SeenRequest) => answer(holdWeight !== undefined && liveWeight() >= holdWeight ? 'no-traffic' : scenario, req);
  const prom = await startFakePrometheus({ handler });
  const dir = await mkdtemp(join(tmpdir(), 'canary-live-'));
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, policyYaml(prom.url));
  const seeded = seedCheckout(fake, { namespace: NAMESPACE, name: TARGET });
  const env: NodeJS.ProcessEnv = { KUBECONFIG: fake.kubeconfigPath, HOME: dir, ...RUN_ENV };
  const otherKubeconfig = join(dir, 'other-kubeconfig');
  await writeFile(otherKubeconfig, anonymousKubeconfig(fake.url), { mode: 0o600 });
  const otherMachineEnv: NodeJS.ProcessEnv = { KUBECONFIG: otherKubeconfig, HOME: dir, GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/shop', GITHUB_RUN_ID: '5151' };
  const start = (args: readonly string[], opts: StartOptions = {}) => startCli(withPolicy(args, opts.policy ?? policyPath), { ...env, ...opts.env });

  const world: LiveWorld = {
    fake,
    prom,
    seeded,
    dir,
    policyPath,
    env,
    otherMachineEnv,
    setScenario: (next) => {
      scenario = next;
    },
    holdAt: (weight) => {
      holdWeight = weight;
    },
    release: () => {
      holdWeight = undefined;
    },
    holdRequests: (spec) => {
      let open!: () => void;
      const until = new Promise<void>((resolve) => (open = resolve));
      held.push(open);
      const handle = fake.injectFault({ ...spec, kind: 'hold', until });
      return {
        get hits() {
          return handle.hits;
        },
        get remaining() {
          return handle.remaining;
        },
        clear: () => handle.clear(),
        release: () => open(),
      };
    },
    writePolicy: async (name, opts) => {
      const path = join(dir, `${name}.yaml`);
      await writeFile(path, policyYaml(prom.url, opts));
      return path;
    },
    start,
    run: (args, opts) => start(args, opts).done,
    deploy: (extra = [], opts) => start([...DEPLOY_ARGS, ...extra], opts),
    canaryIngress: () => fake.get('Ingress', NAMESPACE, CANARY_INGRESS),
    weight: () => world.canaryIngress()?.metadata?.annotations?.[WEIGHT_ANNOTATION],
    record: () => {
      const raw = fake.get('ConfigMap', NAMESPACE, RECORD_CONFIGMAP)?.['data'];
      const text = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>)['record.json'] : undefined;
      if (typeof text !== 'string') return undefined;
      try {
        return inflateQueries(JSON.parse(text) as RolloutRecord);
      } catch {
        return undefined;
      }
    },
    changes: () => fake.writes().filter((w) => !w.path.endsWith('/selfsubjectaccessreviews')).map(({ method, path }) => ({ method, path })),
    otherMachineChanges: () =>
      fake
        .writes()
        .filter((w) => w.credentials === 'absent' && !w.path.endsWith('/selfsubjectaccessreviews'))
        .map(({ method, path }) => ({ method, path })),
    leaseExpired: () => {
      const spec = fake.get('Lease', NAMESPACE, LEASE)?.['spec'] as { renewTime?: string; leaseDurationSeconds?: number } | undefined;
      if (!spec?.renewTime || spec.leaseDurationSeconds === undefined) return false;
      return Date.parse(spec.renewTime) + spec.leaseDurationSeconds * 1000 < Date.now();
    },
    reset: () => {
      for (const open of held) open();
      held = [];
      holdWeight = undefined;
      fake.clearFaults();
      fake.allowAll();
      for (const kind of ['Ingress', 'ConfigMap', 'Lease', 'Event', 'Deployment', 'Service']) {
        for (const obj of fake.list(kind, NAMESPACE)) fake.remove(kind, NAMESPACE, obj.metadata?.name ?? '');
      }
      seedCheckout(fake, { namespace: NAMESPACE, name: TARGET });
      scenario = 'healthy';
      prom.setHandler(handler);
      fake.clearRequests();
    },
    stop: async () => {
      for (const open of held) open();
      await Promise.allSettled([fake.stop(), prom.close()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return world;
}

/** Our ownership label on objects the CLI creates. */
export const OWNED = { 'app.kubernetes.io/managed-by': 'canary-cli', 'canary-cli.dev/target': TARGET };

/** A canary Ingress of ours at `weight`, as a deploy that died would have left it. */
export function ownCanaryIngress(weight: number): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name: CANARY_INGRESS,
      namespace: NAMESPACE,
      labels: { ...OWNED },
      annotations: { [CANARY_ANNOTATION]: 'true', [WEIGHT_ANNOTATION]: String(weight) },
    },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host: 'shop.example.com',
          http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'checkout-canary', port: { number: 80 } } } }] },
        },
      ],
    },
  };
}

/**
 * One live world for the test file (started before its first test, stopped after its last) and
 * reset before each test: `const world = useLiveWorld();` at the top of a file. The value stands
 * for the world that beforeAll starts; using it outside a test or hook is a mistake it names.
 */
export function useLiveWorld(options: FakeKubeOptions = {}): LiveWorld {
  let current: LiveWorld | undefined;
  beforeAll(async () => {
    current = await startLiveWorld(options);
  });
  afterAll(async () => {
    await current?.stop();
    current = undefined;
  });
  beforeEach(() => current?.reset());
  return new Proxy({} as LiveWorld, {
    get: (_target, key) => {
      if (!current) throw new Error(`the live world is used (.${String(key)}) outside a test: it exists only between useLiveWorld()'s beforeAll and afterAll`);
      return Reflect.get(current, key) as unknown;
    },
  });
}
