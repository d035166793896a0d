// Ownership marks on the objects the CLI creates. Rollback and cleanup only ever touch objects
// that carry them, so a canary Ingress someone else made is never modified by us.

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'canary-cli';
export const TARGET_LABEL = 'canary-cli.dev/target';
/** The rollout that last prepared the object, so `kubectl describe` says which deploy made it. */
export const ROLLOUT_ID_ANNOTATION = 'canary-cli.dev/rollout-id';

export function ownershipLabels(target: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [TARGET_LABEL]: target };
}

/** Label selector for list calls: everything we made for this target. */
export function ownershipSelector(target: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${TARGET_LABEL}=${target}`;
}

export function isOwnedBy(labels: Record<string, string> | undefined, target: string): boolean {
  return labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && labels[TARGET_LABEL] === target;
}
/**
 * The stop marker on the object that carries traffic: "" while the rollout may raise its weight,
 * who stopped it and when once a stop (rollback, analysis, signal) wrote weight 0. Every raise
 * tests it in the same JSON Patch, so a raise prepared before the stop can never land after it.
 */
export const STOP_ANNOTATION = 'canary-cli.dev/stop';
/**
 * On the canary route: the fence token of the process that drives the rollout now (its lease
 * holder identity and epoch). A `--resume` claims it, so its predecessor's raises fail their test.
 */
export const FENCE_ANNOTATION = 'canary-cli.dev/holder';
/** On the stable Deployment: the last stop that set it back (written even when its image was already right). */
export const STABLE_RESTORE_ANNOTATION = 'canary-cli.dev/stable-restored-by';
