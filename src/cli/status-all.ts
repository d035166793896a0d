import { CoordinationV1Api, CoreV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import { invalidInput } from '../errors.js';
import { withKubeRetry } from '../k8s/api-errors.js';
import { parseRecordText, RECORD_KEY } from '../k8s/configmap-state-store.js';
import { connect, serverOf } from '../k8s/connection.js';
import { infoOf, leaseName } from '../k8s/lease-info.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, TARGET_LABEL } from '../k8s/labels.js';
import { fleetExitCode, fleetView, renderFleet, type FleetInput } from '../report/fleet-view.js';
import type { RolloutRecord } from '../rollout/record.js';
import { parseNamespace, parseOutput } from './parse-flags.js';

// `canary status --all [-n NS | -A]`: every rollout record the user can see, one line each
// (src/report/fleet-view.ts), from three list calls per scope: the record ConfigMaps, the Leases
// and the canary Ingresses we own (all labelled app.kubernetes.io/managed-by=canary-cli).
// Exit 0 when every rollout is fine, 6 when one is stalled or finished off a safe weight.

export interface StatusAllFlags {
  namespace?: string;
  allNamespaces?: boolean;
  kubeconfig?: string;
  context?: string;
  output?: string;
}

const SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
const RECORD_SUFFIX = '-canary-rollout';

export async function statusAllCommand(flags: StatusAllFlags): Promise<number> {
  const format = parseOutput(flags.output);
  if (flags.allNamespaces && flags.namespace !== undefined) throw invalidInput('-A and -n: expected one of them (-A lists every namespace, -n one)');
  const conn = connect({ ...(flags.kubeconfig && { kubeconfig: flags.kubeconfig }), ...(flags.context && { context: flags.context }) });
  const namespace = flags.allNamespaces ? undefined : parseNamespace(flags.namespace ?? conn.defaultNamespace);
  const where = namespace === undefined ? 'in every namespace' : `in namespace ${namespace}`;
  const server = { server: serverOf(conn.kc) };
  const core = conn.kc.makeApiClient(CoreV1Api);
  const coordination = conn.kc.makeApiClient(CoordinationV1Api);
  const networking = conn.kc.makeApiClient(NetworkingV1Api);
  const labelSelector = SELECTOR;

  const [configMaps, leases, ingresses] = await Promise.all([
    withKubeRetry(
      `listing rollout records ${where}`,
      (o) => (namespace === undefined ? core.listConfigMapForAllNamespaces({ labelSelector }, o) : core.listNamespacedConfigMap({ namespace, labelSelector }, o)),
      server,
    ),
    withKubeRetry(
      `listing rollout Leases ${where}`,
      (o) => (namespace === undefined ? coordination.listLeaseForAllNamespaces({ labelSelector }, o) : coordination.listNamespacedLease({ namespace, labelSelector }, o)),
      server,
    ),
    withKubeRetry(
      `listing canary Ingresses ${where}`,
      (o) => (namespace === undefined ? networking.listIngressForAllNamespaces({ labelSelector }, o) : networking.listNamespacedIngress({ namespace, labelSelector }, o)),
      server,
    ),
  ]);
  const now = Date.now();

  const leaseAt = new Map<string, { holder: string; expired: boolean }>();
  for (const lease of leases.items) {
    const info = infoOf(lease, now);
    leaseAt.set(`${lease.metadata?.namespace}/${lease.metadata?.name}`, { holder: info.holder, expired: info.expired });
  }
  // The highest weight on any canary Ingress we own for the target: what a stuck canary may still get.
  const liveAt = new Map<string, number>();
  for (const ing of ingresses.items) {
    const target = ing.metadata?.labels?.[TARGET_LABEL];
    const raw = ing.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight'];
    if (!target || raw === undefined || raw.trim() === '' || !Number.isFinite(Number(raw))) continue;
    const key = `${ing.metadata?.namespace}/${target}`;
    liveAt.set(key, Math.max(liveAt.get(key) ?? 0, Number(raw)));
  }

  const inputs: FleetInput[] = [];
  for (const cm of configMaps.items) {
    const name = cm.metadata?.name ?? '';
    const ns = cm.metadata?.namespace ?? namespace ?? '';
    if (!name.endsWith(RECORD_SUFFIX)) continue;
    const target = cm.metadata?.labels?.[TARGET_LABEL] ?? name.slice(0, -RECORD_SUFFIX.length);
    const raw = cm.data?.[RECORD_KEY];
    let record: FleetInput['record'];
    try {
      const parsed = parseRecordText(raw ?? '') as RolloutRecord;
      record = typeof parsed === 'object' && parsed !== null && typeof parsed.phase === 'string' ? parsed : { unreadable: `no rollout record in ${RECORD_KEY}` };
    } catch {
      record = { unreadable: raw === undefined ? `no ${RECORD_KEY} key` : `${RECORD_KEY} is not JSON` };
    }
    inputs.push({ namespace: ns, configMap: name, record, liveWeight: liveAt.get(`${ns}/${target}`) ?? null, lease: leaseAt.get(`${ns}/${leaseName(target)}`) ?? null });
  }
  const view = fleetView(inputs, now);
  process.stdout.write(format === 'json' ? `${JSON.stringify(view, null, 2)}\n` : `${renderFleet(view)}\n`);
  return fleetExitCode(view);
}
