// Kubernetes Events on the stable Deployment, so `kubectl describe deployment` tells the
// rollout's story too. Best effort by design: an Event must never slow down or fail a rollout.

import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { redact } from '../secrets.js';
import { describeKubeError, withKubeRetry } from './api-errors.js';
import { serverOf } from './connection.js';

export const EVENT_COMPONENT = 'canary-cli';
const MAX_MESSAGE = 1024;

export interface KubeEvent {
  reason: string;
  message: string;
  type?: 'Normal' | 'Warning';
}

/** Records the event; resolves to undefined, or to why it could not be recorded. Never rejects. */
export async function recordEvent(kc: KubeConfig, namespace: string, deploymentName: string, event: KubeEvent): Promise<string | undefined> {
  const retry = { attempts: 2, baseDelayMs: 200, timeoutMs: 10_000, server: serverOf(kc) };
  try {
    // kubectl describe matches events by the object's uid, so look it up; without it the event is still listed by name.
    let uid: string | undefined;
    try {
      const d = await withKubeRetry(`reading Deployment ${namespace}/${deploymentName}`, (o) => kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: deploymentName, namespace }, o), retry);
      uid = d.metadata?.uid;
    } catch {
      uid = undefined;
    }
    const now = new Date();
    const body: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${deploymentName}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`, namespace },
      involvedObject: { apiVersion: 'apps/v1', kind: 'Deployment', name: deploymentName, namespace, ...(uid ? { uid } : {}) },
      reason: redact(event.reason),
      // Redacted before shortening, so a cut never leaves half a secret behind.
      message: shorten(redact(event.message)),
      type: event.type ?? 'Normal',
      source: { component: EVENT_COMPONENT },
      reportingComponent: EVENT_COMPONENT,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    await withKubeRetry(`recording event ${event.reason} on Deployment ${namespace}/${deploymentName}`, (o) => kc.makeApiClient(CoreV1Api).createNamespacedEvent({ namespace, body }, o), retry);
    return undefined;
  } catch (err) {
    return `could not record event ${event.reason} on Deployment ${namespace}/${deploymentName}: ${err instanceof Error && err.name === 'CanaryError' ? err.message : describeKubeError(err)}`;
  }
}

function shorten(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message;
}
