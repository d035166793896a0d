import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { RolloutRecord } from '../../../src/rollout/record.js';
import { inflateQueries } from '../../../src/k8s/record-queries.js';
import { startFakePrometheus, type FakePrometheus } from '../fake-prometheus.js';
import { answer, policyYaml, rollbackCommand, RUN_ENV, startCli, type CliProcess, type PolicyOptions } from '../live-harness.js';
import { REPO, type CliRun } from '../run-cli.js';
import type { KubeApi, KubeObject } from './api.js';
import { startApiProxy, type ApiProxy } from './api-proxy.js';
import type { RealKube } from './cluster.js';
import { DeploymentController, imageOf } from './deployment-controller.js';
import { ClusterHistory } from './history.js';
import { waitFor } from '../wait.js';

// One rollout world on the real API server: a fresh namespace (a deleted one stays Terminating,
// so none is ever reused) seeded with checkout as DESIGN.md names it, the Deployment controller
// played by the test process, the cluster's history watched, and a scripted Prometheus whose
// answers the test switches between phases. The CLI runs as a child process, as in CI.

export const TARGET = 'checkout';
export const CANARY = 'checkout-canary';
export const RECORD_CONFIGMAP = 'checkout-canary-rollout';
export const LEASE = 'checkout-canary';
export const OLD_IMAGE = 'registry.example.com/shop/checkout:1.0.0';
export const NEW_IMAGE = 'registry.example.com/shop/checkout:2.0.0';
export const WEIGHT_ANNOTATION = 'nginx.ingress.kubernetes.io/canary-weight';

/** `canary rollback checkout -n <the world's namespace> --reason pager`, plus any flags. */
export const rollbackArgs = (world: Pick<World, 'namespace'>, ...extra: string[]): string[] => rollbackCommand(world.namespace, 'pager', ...extra);

/**
 * For world.until: the route and the record both at `weight`. The route is the canary Ingress
 * unless another router is named (a Gateway world's HTTPRoute).
 */
export const atWeight =
  (world: Pick<World, 'weight' | 'record'>, weight: number, route: { weight(): Promise<number | undefined> } = world) =>
  async (): Promise<boolean> =>
    (await route.weight()) === weight && (await world.record())?.weight === weight;

/**
 * What the scripted Prometheus answers.
 * healthy: both sides healthy, every check passes.
 * canary-errors: the canary fails 12% of requests, the first check fails.
 * hold: while the canary Ingress routes `atOrAbove`% or more, no request reached either side, so
 *   every check is inconclusive and the step cannot advance (the policy tolerates a long run of
 *   inconclusive checks); below that weight, healthy. The test releases it with 'healthy'.
 */
export type Metrics = { kind: 'healthy' } | { kind: 'canary-errors' } | { kind: 'hold'; atOrAbove: number };

let namespaces = 0;

export interface World {
  readonly cluster: RealKube;
  readonly namespace: string;
  readonly api: KubeApi;
  readonly controller: DeploymentController;
  readonly history: ClusterHistory;
  readonly dir: string;
  readonly policyPath: string;
  /** KUBECONFIG (admin) and a GitHub run identity for the CLI. */
  readonly env: NodeJS.ProcessEnv;
  setMetrics(metrics: Metrics): void;
  writePolicy(name: string, opts: PolicyOptions): Promise<string>;
  /**
   * Binds the `deployer` user to the Role of an examples/ RBAC manifest (rbac.yaml, or
   * rbac-gateway-api.yaml for the Gateway API router) in this namespace; returns its kubeconfig.
   */
  bindDeployer(manifest?: 'rbac.yaml' | 'rbac-gateway-api.yaml'): Promise<string>;
  /** A proxy in front of the API server and a kubeconfig (admin) that goes through it. */
  proxy(): Promise<{ proxy: ApiProxy; kubeconfig: string }>;
  start(args: readonly string[], opts?: { env?: NodeJS.ProcessEnv; policy?: string }): CliProcess;
  run(args: readonly string[], opts?: { env?: NodeJS.ProcessEnv; policy?: string }): Promise<CliRun & { signal: NodeJS.Signals | null }>;
  deploy(extra?: readonly string[], opts?: { env?: NodeJS.ProcessEnv; policy?: string }): CliProcess;
  /**
   * Starts a deploy with Prometheus answers that leave every step from `weight` on unjudged, and
   * waits until the route (the canary Ingress, or `route`: an HTTPRoute) and the record both
   * hold it at `weight`.
   */
  deployHeldAt(weight: number, opts?: { extra?: readonly string[]; env?: NodeJS.ProcessEnv; policy?: string; route?: { weight(): Promise<number | undefined> } }): Promise<CliProcess>;
  /** The canary weight in the API, undefined without a canary Ingress or annotation. */
  weight(): Promise<number | undefined>;
  record(): Promise<RolloutRecord | undefined>;
  lease(): Promise<{ holder: string; renewTime?: string; durationSeconds?: number } | undefined>;
  /** True when the Lease exists and its renewTime is older than its duration. */
  leaseExpired(): Promise<boolean>;
  /**
   * Makes a dead deploy's Lease what it would be long after: a 5 s lease last renewed ten minutes
   * ago, expired with no wait on a clock here, so a `--resume` waits 5 s of observed silence (its
   * own rule), not the tier's 60 s.
   */
  ageLease(): Promise<void>;
  deployment(name: string): Promise<{ replicas: number; image: string | undefined; generation: number; observedGeneration: number; available: number } | undefined>;
  /** Polls the API until `check` holds (a bound on waiting, not an assertion on time). */
  until(what: string, check: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  dispose(): Promise<void>;
}

function deploymentObject(ns: string, name: string, track: string, image: string, replicas: number): KubeObject {
  const labels = { app: TARGET, track };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: TARGET, image, ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }] }] },
      },
    },
  };
}

function serviceObject(ns: string, name: string, track: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, labels: { app: TARGET } },
    spec: { selector: { app: TARGET, track }, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
  };
}

async function seed(api: KubeApi, ns: string): Promise<void> {
  await api.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await api.post(`/apis/apps/v1/namespaces/${ns}/deployments`, deploymentObject(ns, TARGET, 'stable', OLD_IMAGE, 3));
  await api.post(`/apis/apps/v1/namespaces/${ns}/deployments`, deploymentObject(ns, CANARY, 'canary', OLD_IMAGE, 0));
  await api.post(`/api/v1/namespaces/${ns}/services`, serviceObject(ns, TARGET, 'stable'));
  await api.post(`/api/v1/namespaces/${ns}/services`, serviceObject(ns, CANARY, 'canary'));
  await api.post(`/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`, {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: TARGET, namespace: ns, labels: { app: TARGET } },
    spec: {
      ingressClassName: 'nginx',
      tls: [{ hosts: ['shop.example.com'], secretName: 'checkout-tls' }],
      rules: [{ host: 'shop.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: TARGET, port: { number: 80 } } } }] } }],
    },
  });
}

/** A kubeconfig like `source` whose server is another loopback port. */
async function kubeconfigVia(source: string, port: number, dest: string): Promise<string> {
  const text = await readFile(source, 'utf8');
  await writeFile(dest, text.replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${port}`), { mode: 0o600 });
  return dest;
}

export async function startWorld(cluster: RealKube, prom: ScriptedPrometheus): Promise<World> {
  namespaces += 1;
  const namespace = `shop-${namespaces}-${Math.random().toString(36).slice(2, 7)}`;
  const api = cluster.admin;
  await seed(api, namespace);
  const controller = new DeploymentController(api, namespace);
  controller.start();
  const history = new ClusterHistory(api, namespace, { canaryDeployment: CANARY, record: RECORD_CONFIGMAP, lease: LEASE });
  await history.start();
  const dir = await mkdtemp(join(tmpdir(), 'canary-real-world-'));
  const policyPath = join(dir, 'policy.yaml');
  const basePolicy: PolicyOptions = REAL_POLICY;
  await writeFile(policyPath, policyYaml(prom.url, basePolicy));
  const env: NodeJS.ProcessEnv = { KUBECONFIG: cluster.kubeconfigs.admin, HOME: dir, ...RUN_ENV };
  const proxies: ApiProxy[] = [];
  const ns = (path: string) => path.replace('NS', namespace);

  const weight = async (): Promise<number | undefined> => {
    const ing = await api.find(ns(`/apis/networking.k8s.io/v1/namespaces/NS/ingresses/${CANARY}`));
    const w = ing?.metadata?.annotations?.[WEIGHT_ANNOTATION];
    return w === undefined ? undefined : Number(w);
  };
  prom.attach(weight);

  const withPolicy = (args: readonly string[], policy: string): string[] =>
    args[0] === 'deploy' || args[0] === 'rollback' ? [...args, '-p', policy] : [...args];
  const started: CliProcess[] = [];
  const start = (args: readonly string[], opts: { env?: NodeJS.ProcessEnv; policy?: string } = {}) => {
    const cli = startCli(withPolicy(args, opts.policy ?? policyPath), { ...env, ...opts.env });
    started.push(cli);
    return cli;
  };

  const world: World = {
    cluster,
    namespace,
    api,
    controller,
    history,
    dir,
    policyPath,
    env,
    setMetrics: (m) => prom.set(m),
    writePolicy: async (name, opts) => {
      const path = join(dir, `${name}.yaml`);
      await writeFile(path, policyYaml(prom.url, { ...basePolicy, ...opts }));
      return path;
    },
    bindDeployer: async (manifest = 'rbac.yaml') => {
      const docs = parseAllDocuments(await readFile(join(REPO, 'examples', manifest), 'utf8')).map((d) => d.toJSON() as KubeObject);
      for (const doc of docs) {
        if (doc.metadata) doc.metadata.namespace = namespace;
        if (doc.kind === 'RoleBinding') doc['subjects'] = [{ kind: 'User', name: 'deployer', apiGroup: 'rbac.authorization.k8s.io' }];
        const plural = doc.kind === 'Role' ? 'roles' : 'rolebindings';
        await api.post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/${plural}`, doc);
      }
      return cluster.kubeconfigs.deployer;
    },
    proxy: async () => {
      const proxy = await startApiProxy({ port: cluster.port, ca: cluster.ca, ...cluster.serving });
      proxies.push(proxy);
      const kubeconfig = await kubeconfigVia(cluster.kubeconfigs.admin, proxy.port, join(dir, `proxy-${proxy.port}.kubeconfig`));
      return { proxy, kubeconfig };
    },
    start,
    run: (args, opts) => start(args, opts).done,
    deploy: (extra = [], opts) => start(['deploy', TARGET, '-n', namespace, '--image', NEW_IMAGE, ...extra], opts),
    deployHeldAt: async (at, opts = {}) => {
      prom.set({ kind: 'hold', atOrAbove: at });
      const deploy = world.deploy(opts.extra ?? [], { ...(opts.env && { env: opts.env }), ...(opts.policy !== undefined && { policy: opts.policy }) });
      await world.until(`the deploy to hold at ${at}%`, atWeight(world, at, opts.route));
      return deploy;
    },
    weight,
    record: async () => {
      const cm = await api.find(ns(`/api/v1/namespaces/NS/configmaps/${RECORD_CONFIGMAP}`));
      const text = (cm?.['data'] as Record<string, string> | undefined)?.['record.json'];
      if (typeof text !== 'string') return undefined;
      try {
        return inflateQueries(JSON.parse(text) as RolloutRecord);
      } catch {
        return undefined;
      }
    },
    lease: async () => {
      const lease = await api.find(ns(`/apis/coordination.k8s.io/v1/namespaces/NS/leases/${LEASE}`));
      const spec = lease?.['spec'] as { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number } | undefined;
      if (!lease) return undefined;
      return {
        holder: spec?.holderIdentity ?? '',
        ...(spec?.renewTime !== undefined && { renewTime: spec.renewTime }),
        ...(spec?.leaseDurationSeconds !== undefined && { durationSeconds: spec.leaseDurationSeconds }),
      };
    },
    leaseExpired: async () => {
      const lease = await world.lease();
      if (!lease?.renewTime || lease.durationSeconds === undefined) return false;
      return Date.parse(lease.renewTime) + lease.durationSeconds * 1000 < Date.now();
    },
    ageLease: async () => {
      const longAgo = new Date(Date.now() - 600_000).toISOString().replace('Z', '000Z');
      await api.mergePatch(ns(`/apis/coordination.k8s.io/v1/namespaces/NS/leases/${LEASE}`), { spec: { leaseDurationSeconds: 5, renewTime: longAgo } });
    },
    deployment: async (name) => {
      const d = await api.find(ns(`/apis/apps/v1/namespaces/NS/deployments/${name}`));
      if (!d) return undefined;
      const spec = d['spec'] as { replicas?: number };
      const status = (d['status'] ?? {}) as { observedGeneration?: number; availableReplicas?: number };
      return {
        replicas: spec.replicas ?? 1,
        image: imageOf(d),
        generation: d.metadata?.generation ?? 0,
        observedGeneration: status.observedGeneration ?? 0,
        available: status.availableReplicas ?? 0,
      };
    },
    // A check that throws (the API server restarting) is looked at again.
    until: (what, check, timeoutMs = 60_000) => waitFor(what, check, { timeoutMs, intervalMs: 50 }),
    dispose: async () => {
      // A test that failed half-way may leave a deploy running: it must not outlive its world.
      for (const cli of started) if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      await Promise.allSettled(started.map((cli) => cli.done));
      await controller.stop();
      await history.stop();
      await Promise.allSettled(proxies.map((p) => p.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  return world;
}

/**
 * The tier's policy: one check per step every half second, so a rollout takes seconds; a run of
 * up to 1,000 inconclusive checks is tolerated, so a step held by the test waits for its release.
 * Lease and call timeouts are generous: on a loaded machine slowness must not pass for a fault.
 */
export const REAL_POLICY: PolicyOptions = {
  steps: [
    { weight: 10, duration: '500ms' },
    { weight: 25, duration: '500ms' },
    { weight: 50, duration: '500ms' },
  ],
  interval: '500ms',
  inconclusiveLimit: 1000,
  leaseDuration: '60s',
  readyTimeout: '60s',
  kubeTimeout: '20s',
};

/** A fake Prometheus for one test file whose answers follow the current world's Metrics. */
export interface ScriptedPrometheus {
  readonly url: string;
  readonly server: FakePrometheus;
  set(metrics: Metrics): void;
  /** Where the hold rule reads the live weight from (the current world's canary Ingress). */
  attach(weight: () => Promise<number | undefined>): void;
  close(): Promise<void>;
}

export async function startScriptedPrometheus(): Promise<ScriptedPrometheus> {
  let metrics: Metrics = { kind: 'healthy' };
  let weight: () => Promise<number | undefined> = () => Promise.resolve(undefined);
  const server = await startFakePrometheus({
    handler: async (req) => {
      const now = metrics;
      if (now.kind === 'canary-errors') return answer('canary-errors', req);
      if (now.kind === 'hold') {
        const live = await weight().catch(() => undefined);
        if (live === undefined || live >= now.atOrAbove) return answer('no-traffic', req);
      }
      return answer('healthy', req);
    },
  });
  return {
    url: server.url,
    server,
    set: (m) => {
      metrics = m;
    },
    attach: (w) => {
      weight = w;
      metrics = { kind: 'healthy' };
    },
    close: () => server.close(),
  };
}
