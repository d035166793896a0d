import type { IncidentSinkConfig } from '../incident/config.js';
import type { SecretSource } from '../secrets.js';
import type { HeaderSource } from './headers.js';
import type { SmokeTestSettings } from './smoke-schema.js';
import type { PostPromotionSettings } from './post-promotion-schema.js';
import type { HookSpec } from './hooks-schema.js';
import type { JudgeKind, PresetName, RouterName } from './schema.js';

export type { SecretSource } from '../secrets.js';
export type { HeaderSource } from './headers.js';
export type { SmokeTestSettings, SmokeTestSpec } from './smoke-schema.js';
export type { PostPromotionSettings } from './post-promotion-schema.js';
export type { HookPoint, HookSpec } from './hooks-schema.js';

// The resolved policy the engine runs: every default filled in, every unit normalised
// (durations in ms, rates as fractions, latencies in seconds).

export interface TargetNames {
  stableDeployment: string;
  stableService: string;
  stableIngress: string;
  canaryDeployment: string;
  canaryService: string;
  canaryIngress: string;
  container?: string;
  canaryReplicas?: number;
  headerRouting?: { header: string; value?: string };
}

export interface Step {
  weight: number;
  durationMs: number;
  /**
   * A manual gate, entered once the step would advance: 'until-promoted' waits for `canary
   * promote`, a number waits that many milliseconds at most (or until `canary promote`).
   */
  pause?: 'until-promoted' | number;
}

interface MetricBase {
  name: string;
  critical: boolean;
  judge: JudgeKind;
}

export interface ErrorRateMetric extends MetricBase {
  type: 'error-rate';
  max?: number;
  maxIncrease?: number;
}

export interface LatencyMetric extends MetricBase {
  type: 'latency';
  quantile: number;
  max?: number;
  maxRatio?: number;
}

export interface QueryMetric extends MetricBase {
  type: 'query';
  query: string;
  unit?: 'bytes' | 'cores' | 'seconds' | 'ratio' | 'count';
  max?: number;
  maxRatio?: number;
}

export type MetricSpec = ErrorRateMetric | LatencyMetric | QueryMetric;

export interface PrometheusSettings {
  url?: string;
  timeoutMs: number;
  retries: number;
  /** Overall deadline of one query, all attempts and waits included (default 30 s). */
  deadlineMs?: number;
  bearerToken?: SecretSource;
  basicAuth?: { username: string; password: SecretSource };
  /** Sent with every query; values are secrets unless marked public (src/policy/headers.ts). */
  headers: Record<string, HeaderSource>;
  caFile?: string;
  insecureSkipVerify: boolean;
}

/** Where rollout and DORA metrics are pushed (spec.metrics); absent: nothing is pushed. */
export interface MetricsSettings {
  environment: string;
  pushgateway?: {
    url: string;
    timeoutMs: number;
    deadlineMs: number;
    bearerToken?: SecretSource;
    basicAuth?: { username: string; password: SecretSource };
    headers: Record<string, string>;
    caFile?: string;
    insecureSkipVerify: boolean;
  };
}

export interface AnalysisSettings {
  preset: PresetName;
  windowMs: number;
  minRequests: number;
  failureLimit: number;
  countFailures: 'consecutive' | 'total';
  inconclusiveLimit: number;
  /** Checks the record keeps in full (the rest are tallied). */
  historyLimit: number;
  /** Each live check's query time lags its tick by this much (scrape and ingestion lag). */
  evaluationDelayMs: number;
  selectors: { canary: string; stable: string };
  queries: Record<string, string>;
  /** The preset's: a latencyBuckets answer's `le` ÷ this = seconds (absent: 1; Envoy's ms: 1000). */
  latencyBucketsPerSecond?: number;
  metrics: MetricSpec[];
  sequential: { alpha: number; beta: number; baselineMs: number };
}

export interface KubernetesSettings {
  attempts: number;
  timeoutMs: number;
  /** Overall deadline of one API call, all attempts and waits included. */
  deadlineMs: number;
  /** How long a stopping deploy keeps driving the canary to 0% (re-read each time) before exit 5. */
  stopDeadlineMs: number;
  leaseDurationMs: number;
  readyTimeoutMs: number;
  pollIntervalMs: number;
}

export interface Policy {
  name: string;
  /** Where the policy came from, for reports ("policies/default.yaml"). */
  source: string;
  target: Partial<TargetNames>;
  /** spec.traffic; absent means the ingress-nginx router. */
  traffic?: { router: RouterName; httpRoute?: string };
  intervalMs: number;
  steps: Step[];
  analysis: AnalysisSettings;
  prometheus: PrometheusSettings;
  /** Optional so policies built in code without it stay valid; the loader always sets it. */
  metrics?: MetricsSettings;
  kubernetes: KubernetesSettings;
  /** Incident sinks, in policy order; empty when the policy names none. */
  incidents: IncidentSinkConfig[];
  /** Dashboard link template with {{placeholders}} (see src/incident/config.ts). */
  dashboardUrl?: string;
  /** spec.smokeTests: absent when the policy has none. */
  smokeTests?: SmokeTestSettings;
  /** spec.postPromotion: absent when the policy has no watch after promotion. */
  postPromotion?: PostPromotionSettings;
  /** spec.hooks: absent when the policy has none. */
  hooks?: HookSpec[];
}

/** The names DESIGN.md promises for `canary deploy NAME`, with the policy's overrides applied. */
export function targetNames(name: string, overrides: Partial<TargetNames>): TargetNames {
  return {
    stableDeployment: overrides.stableDeployment ?? name,
    stableService: overrides.stableService ?? name,
    stableIngress: overrides.stableIngress ?? name,
    canaryDeployment: overrides.canaryDeployment ?? `${name}-canary`,
    canaryService: overrides.canaryService ?? `${name}-canary`,
    canaryIngress: overrides.canaryIngress ?? `${name}-canary`,
    ...(overrides.container !== undefined ? { container: overrides.container } : {}),
    ...(overrides.canaryReplicas !== undefined ? { canaryReplicas: overrides.canaryReplicas } : {}),
    ...(overrides.headerRouting !== undefined ? { headerRouting: overrides.headerRouting } : {}),
  };
}

/** How many checks a full rollout makes when every step passes on time. */
export function plannedChecks(policy: Policy): number {
  return policy.steps.reduce((sum, step) => sum + Math.max(1, Math.floor(step.durationMs / policy.intervalMs)), 0);
}
