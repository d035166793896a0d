import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach } from 'vitest';
import { policyYaml } from '../live-harness.js';
import { KubeApiError, type KubeApi, type KubeObject } from './api.js';
import { kubeScriptsDir, type RealKube } from './cluster.js';
import type { Tier } from './tier.js';
import { CANARY, LEASE, RECORD_CONFIGMAP, REAL_POLICY, TARGET, type World } from './world.js';

// The Gateway API on the real API server: the upstream v1.6.1 CRDs of ../shared/kube/gateway-api
// installed once per API server, a GatewayClass, a Gateway and the checkout HTTPRoute in each
// world, the Gateway controller played by the test (it writes the route's status.parents for
// every generation, since nothing else does), and the cluster's history of the route watched
// like the Ingress tier's: every write, in etcd order, so "was the canary ever routed traffic
// without pods?" is answered from what the API server held, not from polling.

const run = promisify(execFile);
export const ROUTE = TARGET;
export const GROUP_PATH = '/apis/gateway.networking.k8s.io/v1';
export const CONTROLLER_NAME = 'example.com/test-gateway-controller';

const installed = new WeakSet<RealKube>();

/** kubectl apply --server-side of the four CRDs, then waits until each is Established. */
export async function installGatewayApi(cluster: RealKube): Promise<void> {
  if (installed.has(cluster)) return;
  const dir = join(kubeScriptsDir() ?? '', 'gateway-api');
  const kc = ['--kubeconfig', cluster.kubeconfigs.admin];
  await run('kubectl', [...kc, 'apply', '--server-side', '-f', dir], { timeout: 120_000 });
  await run('kubectl', [...kc, 'wait', '--for=condition=Established', 'crd', '--all', '--timeout=120s'], { timeout: 130_000 });
  installed.add(cluster);
}

/** The rules the seeded route starts with: static assets elsewhere, everything else to stable. */
export const SEEDED_RULES = [
  { matches: [{ path: { type: 'PathPrefix', value: '/static' } }], backendRefs: [{ kind: 'Service', name: 'assets', port: 80, weight: 1 }] },
  { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ kind: 'Service', name: TARGET, port: 80, weight: 1 }] },
];

type Rule = { name?: string; backendRefs?: { name: string; weight?: number; kind?: string }[]; matches?: unknown[] };

/** The canary's share of the route in percent (independent of the product's code), undefined when no rule names the canary. */
export function canaryWeightOf(route: KubeObject | undefined): number | undefined {
  const rules = ((route?.['spec'] as { rules?: Rule[] } | undefined)?.rules ?? []).filter((r) => !(r.backendRefs ?? []).every((b) => b.name === CANARY));
  let found: number | undefined;
  for (const rule of rules) {
    const refs = rule.backendRefs ?? [];
    const canary = refs.filter((b) => b.name === CANARY).reduce((s, b) => s + (b.weight ?? 1), 0);
    const total = refs.reduce((s, b) => s + (b.weight ?? 1), 0);
    if (refs.some((b) => b.name === CANARY)) found = Math.max(found ?? 0, total ? Math.round((100 * canary) / total) : 0);
  }
  return found;
}

/** Rules that send only to the canary (the header-match rule): they reach it at any weight. */
export function canaryOnlyRules(route: KubeObject | undefined): Rule[] {
  return ((route?.['spec'] as { rules?: Rule[] } | undefined)?.rules ?? []).filter((r) => (r.backendRefs ?? []).length > 0 && (r.backendRefs ?? []).every((b) => b.name === CANARY));
}

/** Plays the Gateway controller: every new generation of a route in the namespace gets Accepted and ResolvedRefs for it. */
class GatewayController {
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;
  /** Generations whose status was written, per route. */
  readonly accepted = new Map<string, number>();

  constructor(
    private readonly api: KubeApi,
    private readonly namespace: string,
  ) {}

  private async accept(route: KubeObject): Promise<void> {
    const name = route.metadata?.name ?? '';
    const generation = route.metadata?.generation ?? 0;
    if ((this.accepted.get(name) ?? -1) >= generation) return;
    const condition = (type: string, reason: string) => ({
      type,
      status: 'True',
      reason,
      message: `${type} by the test's Gateway controller`,
      observedGeneration: generation,
      lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    });
    const status = {
      parents: [
        {
          parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public' },
          controllerName: CONTROLLER_NAME,
          conditions: [condition('Accepted', 'Accepted'), condition('ResolvedRefs', 'ResolvedRefs')],
        },
      ],
    };
    await this.api.mergePatch(`${GROUP_PATH}/namespaces/${this.namespace}/httproutes/${name}/status`, { status });
    this.accepted.set(name, generation);
  }

  start(): void {
    const path = `${GROUP_PATH}/namespaces/${this.namespace}/httproutes`;
    const signal = this.stopper.signal;
    this.loop = (async () => {
      let version = (await this.api.list(path)).resourceVersion;
      while (!signal.aborted) {
        try {
          version = await this.api.watchOnce(path, version, (e) => void this.accept(e.object).catch(() => undefined), signal);
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof KubeApiError && err.status === 410) version = (await this.api.list(path)).resourceVersion;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop?.catch(() => undefined);
  }
}

type Kind = 'HTTPRoute' | 'Deployment' | 'ConfigMap' | 'Lease';
interface Change {
  revision: number;
  kind: Kind;
  type: string;
  name: string;
  object: KubeObject;
}

/** The watched history of the route, the Deployments, the record and the Lease (as ClusterHistory does for Ingresses). */
export class RouteHistory {
  readonly changes: Change[] = [];
  private readonly stopper = new AbortController();
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly api: KubeApi,
    private readonly namespace: string,
  ) {}

  async start(): Promise<void> {
    const ns = this.namespace;
    const kinds: [Kind, string][] = [
      ['HTTPRoute', `${GROUP_PATH}/namespaces/${ns}/httproutes`],
      ['Deployment', `/apis/apps/v1/namespaces/${ns}/deployments`],
      ['ConfigMap', `/api/v1/namespaces/${ns}/configmaps`],
      ['Lease', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`],
    ];
    for (const [kind, path] of kinds) {
      const { resourceVersion, items } = await this.api.list(path);
      for (const object of items) this.add(kind, 'ADDED', object);
      this.loops.push(this.follow(kind, path, resourceVersion));
    }
  }

  private add(kind: Kind, type: string, object: KubeObject): void {
    const name = object.metadata?.name ?? '';
    const revision = Number(object.metadata?.resourceVersion ?? 0);
    if (this.changes.some((c) => c.kind === kind && c.name === name && c.revision === revision && c.type === type)) return;
    this.changes.push({ revision, kind, type, name, object });
  }

  private async follow(kind: Kind, path: string, from: string): Promise<void> {
    let version = from;
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      try {
        version = await this.api.watchOnce(path, version, (e) => this.add(kind, e.type, e.object), signal);
      } catch {
        if (signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await Promise.allSettled(this.loops);
  }

  /** The route's canary weight (or "header" while a header rule sends to the canary) after each change, in revision order, with the rest of the state. */
  private snapshots() {
    const ordered = [...this.changes].sort((a, b) => a.revision - b.revision);
    let weight: number | undefined;
    let header = false;
    let canaryReplicas = 0;
    let leaseHolder: string | undefined;
    let phase: string | undefined;
    const out: { revision: number; cause: string; weight: number | undefined; header: boolean; canaryReplicas: number; leaseHolder: string | undefined; phase: string | undefined }[] = [];
    for (const c of ordered) {
      const gone = c.type === 'DELETED';
      if (c.kind === 'HTTPRoute' && c.name === ROUTE) {
        weight = gone ? undefined : canaryWeightOf(c.object);
        header = !gone && canaryOnlyRules(c.object).length > 0;
      } else if (c.kind === 'Deployment' && c.name === CANARY) {
        canaryReplicas = gone ? 0 : ((c.object['spec'] as { replicas?: number } | undefined)?.replicas ?? 1);
      } else if (c.kind === 'Lease' && c.name === LEASE) {
        const holder = (c.object['spec'] as { holderIdentity?: string } | undefined)?.holderIdentity;
        leaseHolder = gone || !holder ? undefined : holder;
      } else if (c.kind === 'ConfigMap' && c.name === RECORD_CONFIGMAP) {
        const text = (c.object['data'] as Record<string, string> | undefined)?.['record.json'];
        try {
          phase = gone || !text ? undefined : (JSON.parse(text) as { phase?: string }).phase;
        } catch {
          phase = 'corrupt';
        }
      }
      out.push({ revision: c.revision, cause: `${c.kind} ${c.name} ${c.type}`, weight, header, canaryReplicas, leaseHolder, phase });
    }
    return out;
  }

  /**
   * Moments the cluster was unsafe: the route sent the canary traffic (a weight above 0 or a
   * header rule) while the canary had 0 replicas, or while the lease was released or the record
   * said the rollout had ended.
   */
  violations(): string[] {
    const out: string[] = [];
    let previous: ReturnType<RouteHistory['snapshots']>[number] | undefined;
    for (const s of this.snapshots()) {
      if ((s.weight ?? 0) > 0 || s.header) {
        const where = `revision ${s.revision} (${s.cause}): canary weight ${s.weight ?? '-'}${s.header ? ' and a header rule' : ''}`;
        if (s.canaryReplicas === 0) out.push(`${where} while ${CANARY} had 0 replicas`);
        if (previous?.leaseHolder !== undefined && s.leaseHolder === undefined) out.push(`${where} when the lease was released`);
        if (s.phase && ['promoted', 'rolled-back', 'aborted', 'failed'].includes(s.phase) && s.phase !== previous?.phase) out.push(`${where} when the record said ${s.phase}`);
      }
      previous = s;
    }
    return out;
  }

  /** The canary weights the route held, in order, without repeats (undefined: no canary backendRef). */
  weights(): (number | undefined)[] {
    const seen: (number | undefined)[] = [];
    let first = true;
    for (const s of this.snapshots().filter((x) => x.cause.startsWith('HTTPRoute'))) {
      if (first || seen.at(-1) !== s.weight) seen.push(s.weight);
      first = false;
    }
    return seen;
  }

  /** Every version of the route the API server held, in order. */
  routes(): KubeObject[] {
    return [...this.changes].filter((c) => c.kind === 'HTTPRoute' && c.name === ROUTE).sort((a, b) => a.revision - b.revision).map((c) => c.object);
  }
}

export interface GatewayWorld {
  /** A policy (REAL_POLICY) with spec.traffic.router: gateway-api. */
  policy: string;
  history: RouteHistory;
  controller: GatewayController;
  /** The canary share of the route now, undefined when no rule names the canary. */
  weight(): Promise<number | undefined>;
  route(): Promise<KubeObject | undefined>;
  writePolicy(name: string, extra?: Partial<typeof REAL_POLICY>, trafficLines?: string[]): Promise<string>;
  dispose(): Promise<void>;
}

/** Adds the Gateway API objects to a world, its history and Gateway controller, and points the scripted Prometheus at the route's weight. */
export async function gatewayWorld(tier: Tier): Promise<GatewayWorld> {
  const { world, prom, cluster } = tier;
  await installGatewayApi(cluster);
  const api = world.api;
  const ns = world.namespace;
  const className = `test-${ns}`;
  await api.post(`${GROUP_PATH}/gatewayclasses`, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: className }, spec: { controllerName: CONTROLLER_NAME } });
  await api.post(`${GROUP_PATH}/namespaces/${ns}/gateways`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'public', namespace: ns },
    spec: { gatewayClassName: className, listeners: [{ name: 'http', protocol: 'HTTP', port: 80 }] },
  });
  const controller = new GatewayController(api, ns);
  controller.start();
  const history = new RouteHistory(api, ns);
  await history.start();
  await api.post(`${GROUP_PATH}/namespaces/${ns}/httproutes`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: ROUTE, namespace: ns, labels: { app: TARGET } },
    spec: { parentRefs: [{ name: 'public' }], hostnames: ['shop.example.com'], rules: SEEDED_RULES },
  });
  const route = () => api.find(`${GROUP_PATH}/namespaces/${ns}/httproutes/${ROUTE}`);
  const weight = async () => canaryWeightOf(await route());
  prom.attach(weight);
  const writePolicy = async (name: string, extra: Partial<typeof REAL_POLICY> = {}, trafficLines: string[] = []) => {
    const path = join(world.dir, `${name}.yaml`);
    await writeFile(path, `${policyYaml(prom.url, { ...REAL_POLICY, ...extra })}  traffic:\n    router: gateway-api\n${trafficLines.map((l) => `${l}\n`).join('')}`);
    return path;
  };
  const policy = await writePolicy('gateway');
  return {
    policy,
    history,
    controller,
    weight,
    route,
    writePolicy,
    dispose: async () => {
      await controller.stop();
      await history.stop();
      await api.delete(`${GROUP_PATH}/gatewayclasses/${className}`).catch(() => undefined);
    },
  };
}

/** True once the test's Gateway controller has written status for the route's current generation (and that status is in the API). */
export async function routeAccepted(_world: World, gw: GatewayWorld): Promise<boolean> {
  const route = await gw.route();
  const parents = (route?.['status'] as { parents?: { conditions?: { type: string; observedGeneration?: number }[] }[] } | undefined)?.parents ?? [];
  const generation = route?.metadata?.generation;
  return gw.controller.accepted.get(ROUTE) === generation && parents.some((p) => (p.conditions ?? []).some((c) => c.type === 'Accepted' && c.observedGeneration === generation));
}

/**
 * A fresh Gateway world for each test of the enclosing describe block, its route accepted before
 * the test starts and disposed after it: returns a getter for the current one.
 */
export function useGatewayWorld(tier: Tier): () => GatewayWorld {
  let gw: GatewayWorld | undefined;
  const current = (): GatewayWorld => {
    if (!gw) throw new Error('no gateway world: useGatewayWorld() makes one per test, inside its describe block');
    return gw;
  };
  beforeEach(async () => {
    gw = await gatewayWorld(tier);
    await tier.world.until('the test Gateway controller to accept the route', () => routeAccepted(tier.world, current()));
  }, 180_000);
  afterEach(async () => {
    await gw?.dispose();
    gw = undefined;
  });
  return current;
}

/**
 * A deploy run as the `deployer` user bound only to examples/rbac-gateway-api.yaml (no Ingress
 * verbs), held at 25% on the route: its environment, for the commands that follow, and process.
 */
export async function deployerHeldAt25(world: World, gw: GatewayWorld) {
  const env = { KUBECONFIG: await world.bindDeployer('rbac-gateway-api.yaml') };
  return { env, deploy: await world.deployHeldAt(25, { env, policy: gw.policy, route: gw }) };
}
