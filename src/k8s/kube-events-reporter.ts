import type { KubeConfig } from '@kubernetes/client-node';
import type { Reporter, RolloutEvent } from '../rollout/events.js';
import { FINAL_PHASES } from '../rollout/record.js';
import { recordEvent } from './kube-events.js';

/**
 * Mirrors the rollout's milestones as Kubernetes Events on the stable Deployment, so
 * `kubectl describe deployment checkout` tells the same story as `canary status`.
 * Events are best effort: they never slow down or fail the rollout.
 */
export class KubeEventsReporter implements Reporter {
  private readonly pending: Promise<unknown>[] = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
    private readonly deployment: string,
  ) {}

  private send(reason: string, message: string, type: 'Normal' | 'Warning' = 'Normal'): void {
    this.pending.push(recordEvent(this.kc, this.namespace, this.deployment, { reason, message, type }));
  }

  emit(event: RolloutEvent): void {
    switch (event.type) {
      case 'started':
        this.send(
          event.resumed ? 'CanaryResumed' : 'CanaryStarted',
          event.resumed
            ? `canary ${event.record.images.canary} (rollout ${event.record.id}) resumed by ${event.record.resumedBy ?? 'unknown'} (started by ${event.record.startedBy})`
            : `canary ${event.record.images.canary} (rollout ${event.record.id}) started by ${event.record.startedBy}`,
        );
        return;
      case 'step':
        this.send('CanaryStep', `step ${event.stepIndex + 1}/${event.steps}: ${event.weight}% of traffic to the canary`);
        return;
      case 'finished': {
        const { outcome } = event;
        if (outcome.result === 'promoted') this.send('CanaryPromoted', `promoted ${event.record.images.canary}: ${outcome.reason}`);
        // Not finished in the record (0% not confirmed by a read, or the promotion's last write
        // failed): nothing may claim a rollback or an abort yet.
        else if (outcome.result === 'failed' && !FINAL_PHASES.includes(event.record.phase)) this.send('CanaryStopIncomplete', `${outcome.reason}; ${outcome.traffic}`, 'Warning');
        else this.send(outcome.result === 'aborted' ? 'CanaryAborted' : outcome.result === 'rolled-back-after-promotion' ? 'CanaryRolledBackAfterPromotion' : 'CanaryRolledBack', `${outcome.reason}; ${outcome.traffic}`, 'Warning');
        return;
      }
      default:
        return;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.pending);
  }
}
