import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { CanaryError, invalidInput } from '../errors.js';
import { PRESETS_BY_NAME } from '../analysis/presets.js';
import { placeholdersIn, unknownPlaceholders } from '../analysis/promql-template.js';
import { shippedPath } from '../paths.js';
import { policyFileSchema, type PolicyFile } from './schema.js';
import { checkSmokeTests, resolveSmokeTests } from './smoke-schema.js';
import { checkPostPromotion, resolvePostPromotion } from './post-promotion-schema.js';
import { checkHooks, resolveHooks } from './hooks-schema.js';
import type { MetricSpec, Policy } from './policy.js';
import { DEFAULT_HISTORY_LIMIT } from '../rollout/record.js';
import { describeInput, formatDuration } from './units.js';

export const DEFAULT_POLICY_PATH = 'policies/default.yaml';
/** Scrape (ingress-nginx every 30 s or faster) plus ingestion: the newest 30 s may not be in Prometheus yet. */
export const DEFAULT_EVALUATION_DELAY_MS = 30_000;

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; lists and scalars from the override replace the base's. */
export function merge(base: unknown, override: unknown): unknown {
  if (!isPlain(base) || !isPlain(override)) return override === undefined ? base : override;
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(override)) out[key] = merge(base[key], value);
  return out;
}

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw invalidInput(
      `${source} is not valid YAML`,
      doc.errors.map((e) => e.message.split('\n')[0] ?? e.message),
    );
  }
  return doc.toJS();
}

// A secret pasted into the policy must not be echoed back into CI logs by our own error message.
const SECRET_PATH = /^spec\.(prometheus|incidents|dashboardUrl)(\.|\[|$)|^spec\.metrics\.pushgateway(\.|\[|$)|bearerToken|password|basicAuth|secret|token|routingKey|webhookUrl|headers/i;
const SECRET_HINT = 'expected { env: VARIABLE } or { file: PATH } (the value is not shown: it may be a secret, and secrets never go in the policy)';

const EXPECTED_TYPE: Record<string, string> = { object: 'a mapping', record: 'a mapping', array: 'a list', string: 'a string', number: 'a number' };

function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = issue.path
      .map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`))
      .join('');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    if (issue.code === 'invalid_type') {
      if (issue.input === undefined) message = `required field is missing (expected ${issue.expected})`;
      else if (SECRET_PATH.test(path)) message = SECRET_HINT;
      else message = `expected ${EXPECTED_TYPE[issue.expected] ?? issue.expected}, got ${describeInput(issue.input)}`;
    }
    return `${path || '(top level)'}: ${message}`;
  });
}

function checkSteps(policy: Policy, problems: string[]): void {
  policy.steps.forEach((step, i) => {
    const prev = policy.steps[i - 1];
    if (prev && step.weight <= prev.weight) {
      problems.push(`spec.steps[${i}].weight: expected more than the previous step's ${prev.weight}, got ${step.weight}`);
    }
    if (step.weight === 100 && i !== policy.steps.length - 1) {
      problems.push(`spec.steps[${i}].weight: 100 is only allowed as the last step`);
    }
    if (step.durationMs < policy.intervalMs) {
      problems.push(
        `spec.steps[${i}].duration: expected at least the check interval (${formatDuration(policy.intervalMs)}), got ${formatDuration(step.durationMs)}`,
      );
    }
  });
  const shortest = Math.min(...policy.steps.map((s) => s.durationMs));
  if (policy.analysis.windowMs > shortest) {
    // A window longer than a step mixes the previous step's traffic into this step's verdict.
    problems.push(
      `spec.analysis.window: expected no longer than the shortest step (${formatDuration(shortest)}), got ${formatDuration(policy.analysis.windowMs)}`,
    );
  }
}

/** Side-specific placeholders: without one, a query returns the same number for canary and stable. */
const SIDE_PLACEHOLDER = /\{\{\s*(selector|service|deployment|podRegex)\s*\}\}/;

function checkMetrics(policy: Policy, problems: string[]): void {
  const { metrics, queries } = policy.analysis;
  const seen = new Set<string>();
  metrics.forEach((metric, i) => {
    const at = `spec.analysis.metrics[${i}]`;
    if (seen.has(metric.name)) problems.push(`${at}.name: "${metric.name}" is used twice`);
    seen.add(metric.name);
    if (metric.type === 'query') {
      const named = /^[a-zA-Z][\w-]*$/.test(metric.query);
      if (named && !(metric.query in queries)) {
        problems.push(`${at}.query: expected a PromQL template or one of ${Object.keys(queries).map((q) => `"${q}"`).join(', ')}, got "${metric.query}"`);
      }
      const template = queries[metric.query] ?? metric.query;
      if ((metric.critical || metric.maxRatio !== undefined) && !SIDE_PLACEHOLDER.test(template)) {
        problems.push(`${at}.query: a critical or relative metric must tell canary from stable: expected {{selector}}, {{service}}, {{deployment}} or {{podRegex}} in the query`);
      }
      if (metric.judge === 'sequential') problems.push(`${at}.judge: "sequential" needs counts and works for "error-rate" and "latency" only`);
    }
    if (metric.critical && !hasThreshold(metric)) {
      problems.push(`${at}: a critical metric needs a threshold ("max", "maxRatio" or "maxIncrease")`);
    }
    if (metric.judge !== 'sequential') return;
    // The sequential judges test "worse than stable by the margin": the margin must be stated.
    if (metric.type === 'error-rate') {
      if (metric.maxIncrease === undefined || !(metric.maxIncrease > 0 && metric.maxIncrease < 1)) {
        problems.push(`${at}.maxIncrease: the sequential judge needs the margin above stable, between 0% and 100% (like "3%"), got ${metric.maxIncrease === undefined ? 'nothing' : `${metric.maxIncrease * 100}%`}`);
      }
      if (metric.max !== undefined && !(metric.max > 0 && metric.max < 1)) {
        problems.push(`${at}.max: the sequential judge needs a cap between 0% and 100% (like "5%"), got ${metric.max * 100}%`);
      }
    }
    if (metric.type === 'latency' && !(metric.maxRatio !== undefined && metric.maxRatio > 1)) {
      problems.push(`${at}.maxRatio: the sequential judge needs a ratio to stable above 1 (like 1.5), got ${metric.maxRatio ?? 'nothing'}`);
    }
  });
  if (!metrics.some((m) => m.critical)) {
    problems.push('spec.analysis.metrics: expected at least one critical metric; advisory metrics never decide, so nothing would judge the canary');
  }
  const last = policy.steps[policy.steps.length - 1];
  if (last?.weight === 100 && !metrics.some((m) => m.critical && m.max !== undefined)) {
    problems.push(`spec.steps[${policy.steps.length - 1}]: a 100% step needs a critical metric with an absolute "max": stable serves no traffic there to compare with`);
  }
  if (metrics.some((m) => m.judge === 'sequential') && policy.analysis.windowMs > policy.intervalMs) {
    problems.push(
      `spec.analysis.window: with sequential judges, expected no longer than the check interval (${formatDuration(policy.intervalMs)}): overlapping windows would count the same requests twice, got ${formatDuration(policy.analysis.windowMs)}`,
    );
  }
  const { alpha, beta } = policy.analysis.sequential;
  if (!(alpha > 0 && alpha <= 0.2)) problems.push(`spec.analysis.sequential.alpha: expected a small probability above 0 and at most 20%, like "1%", got ${alpha * 100}%`);
  if (!(beta > 0 && beta <= 0.5)) problems.push(`spec.analysis.sequential.beta: expected a probability above 0 and at most 50%, like "5%", got ${beta * 100}%`);
}

const SELECTOR_PLACEHOLDERS = ['namespace', 'ingress', 'stableService', 'canaryService', 'stableDeployment', 'canaryDeployment', 'service', 'deployment', 'podRegex'];

function checkTemplates(policy: Policy, problems: string[]): void {
  const { queries, selectors, metrics } = policy.analysis;
  const templates: [string, string, string[] | null][] = [
    ...Object.entries(queries).map(([k, v]): [string, string, string[] | null] => [`spec.analysis.queries.${k}`, v, null]),
    ['spec.analysis.selectors.canary', selectors.canary, SELECTOR_PLACEHOLDERS],
    ['spec.analysis.selectors.stable', selectors.stable, SELECTOR_PLACEHOLDERS],
    ...metrics.flatMap((m, i): [string, string, string[] | null][] =>
      m.type === 'query' && !(m.query in queries) ? [[`spec.analysis.metrics[${i}].query`, m.query, null]] : [],
    ),
  ];
  for (const [path, template, allowed] of templates) {
    const unknown = unknownPlaceholders(template).filter((name) => !allowed || !allowed.includes(name));
    const misplaced = allowed ? placeholdersIn(template).filter((n) => !allowed.includes(n) && !unknown.includes(n)) : [];
    if (unknown.length) problems.push(`${path}: unknown placeholder ${unknown.map((u) => `{{${u}}}`).join(', ')}`);
    if (misplaced.length) problems.push(`${path}: ${misplaced.map((u) => `{{${u}}}`).join(', ')} cannot be used in a selector`);
    // Only the latency query is rendered with a quantile; anywhere else it would reach Prometheus as text.
    if (path !== 'spec.analysis.queries.latency' && placeholdersIn(template).includes('quantile')) {
      problems.push(`${path}: {{quantile}} is only filled in the "latency" query`);
    }
  }
}

// Credentials go in bearerToken/basicAuth (from env or file), never in the URL or plain headers.
const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie'];

function checkPrometheus(policy: Policy, problems: string[]): void {
  const { url, headers } = policy.prometheus;
  if (url !== undefined) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      problems.push('spec.prometheus.url: expected an http:// or https:// URL like "http://prometheus.monitoring:9090"');
    }
    if (parsed && parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      problems.push(`spec.prometheus.url: expected an http:// or https:// URL, got scheme "${parsed.protocol.replace(/:$/, '')}"`);
    }
    if (parsed && (parsed.username || parsed.password || parsed.search)) {
      problems.push('spec.prometheus.url: expected no user:password@ or ?query in the URL (not shown: it may hold a secret); use bearerToken or basicAuth from an env var or file');
    }
  }
  for (const [name, header] of Object.entries(headers)) {
    if (SECRET_HEADERS.includes(name.toLowerCase()) && header.value !== undefined) {
      problems.push(`spec.prometheus.headers.${name}: credentials never go in the policy (the value is not shown); use bearerToken or basicAuth, or { env: VARIABLE } / { file: PATH }`);
    }
  }
}

function checkPushgateway(policy: Policy, problems: string[]): void {
  const pg = policy.metrics?.pushgateway;
  if (!pg) return;
  let parsed: URL | null = null;
  try {
    parsed = new URL(pg.url);
  } catch {
    problems.push('spec.metrics.pushgateway.url: expected an http:// or https:// URL like "http://pushgateway.monitoring:9091"');
  }
  if (parsed && parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    problems.push(`spec.metrics.pushgateway.url: expected an http:// or https:// URL, got scheme "${parsed.protocol.replace(/:$/, '')}"`);
  }
  if (parsed && (parsed.username || parsed.password || parsed.search)) {
    problems.push('spec.metrics.pushgateway.url: expected no user:password@ or ?query in the URL (not shown: it may hold a secret); use bearerToken or basicAuth from an env var or file');
  }
  if (pg.bearerToken && pg.basicAuth) problems.push('spec.metrics.pushgateway: expected either bearerToken or basicAuth, got both');
  for (const name of Object.keys(pg.headers)) {
    if (SECRET_HEADERS.includes(name.toLowerCase())) {
      problems.push(`spec.metrics.pushgateway.headers.${name}: credentials never go in the policy; use bearerToken or basicAuth from an env var or file`);
    }
  }
}

function crossCheck(policy: Policy): string[] {
  const problems: string[] = [];
  checkPushgateway(policy, problems);
  checkSteps(policy, problems);
  checkMetrics(policy, problems);
  checkTemplates(policy, problems);
  checkPrometheus(policy, problems);
  checkSmokeTests(policy.smokeTests, policy.target.headerRouting, policy.traffic?.router ?? 'ingress-nginx', problems);
  checkPostPromotion(policy.postPromotion, policy.analysis.metrics, problems);
  checkHooks(policy.hooks, problems);
  return problems;
}

function hasThreshold(metric: MetricSpec): boolean {
  if (metric.type === 'error-rate') return metric.max !== undefined || metric.maxIncrease !== undefined;
  return metric.max !== undefined || metric.maxRatio !== undefined;
}

function resolve(file: PolicyFile, source: string): Policy {
  const spec = file.spec;
  const a = spec.analysis ?? {};
  const preset = PRESETS_BY_NAME[a.preset ?? 'ingress-nginx'];
  const p = spec.prometheus ?? {};
  const metrics: MetricSpec[] = (a.metrics ?? []).map((m): MetricSpec => {
    const base = { name: m.name, critical: m.critical ?? m.type !== 'query', judge: m.judge ?? 'threshold' };
    switch (m.type) {
      case 'error-rate':
        return { ...base, type: 'error-rate', ...(m.max !== undefined && { max: m.max }), ...(m.maxIncrease !== undefined && { maxIncrease: m.maxIncrease }) };
      case 'latency':
        return { ...base, type: 'latency', quantile: m.quantile ?? 0.95, ...(m.max !== undefined && { max: m.max }), ...(m.maxRatio !== undefined && { maxRatio: m.maxRatio }) };
      case 'query':
        return {
          ...base,
          type: 'query',
          query: m.query,
          ...(m.unit !== undefined && { unit: m.unit }),
          ...(m.max !== undefined && { max: m.max }),
          ...(m.maxRatio !== undefined && { maxRatio: m.maxRatio }),
        };
    }
  });
  return {
    name: file.metadata?.name ?? 'unnamed',
    source,
    target: { ...(spec.target ?? {}) },
    ...(spec.traffic && { traffic: { router: spec.traffic.router ?? 'ingress-nginx', ...(spec.traffic.httpRoute !== undefined && { httpRoute: spec.traffic.httpRoute }) } }),
    intervalMs: spec.interval ?? 60_000,
    steps: (spec.steps ?? []).map((s) => ({ weight: s.weight, durationMs: s.duration, ...(s.pause !== undefined && { pause: s.pause }) })),
    analysis: {
      preset: a.preset ?? 'ingress-nginx',
      windowMs: a.window ?? spec.interval ?? 60_000,
      minRequests: a.minRequests ?? 20,
      failureLimit: a.failureLimit ?? 1,
      countFailures: a.countFailures ?? 'consecutive',
      inconclusiveLimit: a.inconclusiveLimit ?? 5,
      historyLimit: a.historyLimit ?? DEFAULT_HISTORY_LIMIT,
      evaluationDelayMs: a.evaluationDelay ?? DEFAULT_EVALUATION_DELAY_MS,
      selectors: a.selectors ?? preset.selectors,
      queries: { ...preset.queries, ...(a.queries ?? {}) },
      ...(preset.latencyBucketsPerSecond !== undefined && { latencyBucketsPerSecond: preset.latencyBucketsPerSecond }),
      metrics,
      sequential: {
        alpha: a.sequential?.alpha ?? 0.01,
        beta: a.sequential?.beta ?? 0.05,
        baselineMs: a.sequential?.baseline ?? 3_600_000,
      },
    },
    kubernetes: {
      // One call against a black-holed API server gives up after the deadline (30 s), not 5 × 30 s.
      attempts: spec.kubernetes?.attempts ?? 10,
      timeoutMs: spec.kubernetes?.timeout ?? 10_000,
      deadlineMs: spec.kubernetes?.deadline ?? 30_000,
      // A deploy's own stop rides out a control-plane restart (minutes); `canary rollback --timeout`
      // keeps its own short default (30s) for the person at the keyboard.
      stopDeadlineMs: spec.kubernetes?.stopDeadline ?? 300_000,
      leaseDurationMs: spec.kubernetes?.leaseDuration ?? 60_000,
      readyTimeoutMs: spec.kubernetes?.readyTimeout ?? 600_000,
      pollIntervalMs: spec.kubernetes?.pollInterval ?? 2_000,
    },
    prometheus: {
      ...(p.url !== undefined && { url: p.url }),
      timeoutMs: p.timeout ?? 10_000,
      retries: p.retries ?? 3,
      ...(p.deadline !== undefined && { deadlineMs: p.deadline }),
      ...(p.bearerToken && { bearerToken: p.bearerToken }),
      ...(p.basicAuth && { basicAuth: p.basicAuth }),
      headers: p.headers ?? {},
      ...(p.caFile !== undefined && { caFile: p.caFile }),
      insecureSkipVerify: p.insecureSkipVerify ?? false,
    },
    metrics: resolveMetrics(spec.metrics),
    incidents: spec.incidents ?? [],
    ...(spec.dashboardUrl !== undefined && { dashboardUrl: spec.dashboardUrl }),
    ...(spec.smokeTests && { smokeTests: resolveSmokeTests(spec.smokeTests) }),
    ...(spec.postPromotion && { postPromotion: resolvePostPromotion(spec.postPromotion, spec.interval ?? 60_000, metrics) }),
    ...(spec.hooks?.length && { hooks: resolveHooks(spec.hooks) }),
  } as Policy;
}

function resolveMetrics(m: PolicyFile['spec']['metrics']): NonNullable<Policy['metrics']> {
  const pg = m?.pushgateway;
  return {
    environment: m?.environment ?? 'production',
    ...(pg && {
      pushgateway: {
        url: pg.url,
        timeoutMs: pg.timeout ?? 5_000,
        deadlineMs: pg.deadline ?? 10_000,
        ...(pg.bearerToken && { bearerToken: pg.bearerToken }),
        ...(pg.basicAuth && { basicAuth: pg.basicAuth }),
        headers: pg.headers ?? {},
        ...(pg.caFile !== undefined && { caFile: pg.caFile }),
        insecureSkipVerify: pg.insecureSkipVerify ?? false,
      },
    }),
  };
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw invalidInput(
      code === 'ENOENT' ? `policy file ${path} does not exist` : `cannot read policy file ${path}: ${(err as Error).message}`,
    );
  }
}

/**
 * Parses and validates a policy text merged over the shipped default. Throws a CanaryError
 * (exit 2) listing every problem with its path, so one run shows everything to fix.
 */
export function parsePolicy(text: string, source: string, base?: unknown): Policy {
  const raw = parseYaml(text, source);
  if (!isPlain(raw)) throw invalidInput(`${source}: expected a YAML mapping with apiVersion, kind and spec`);
  const merged = base === undefined ? raw : merge(base, raw);
  const result = policyFileSchema.safeParse(merged, { reportInput: true });
  if (!result.success) {
    throw invalidInput(`${source} is not a valid policy`, formatIssues(result.error.issues));
  }
  const policy = resolve(result.data, source);
  // A policy's name is its own: one merged over the default without a name is named after its file.
  const ownName = isPlain(raw['metadata']) ? raw['metadata']['name'] : undefined;
  if (base !== undefined && typeof ownName !== 'string') policy.name = basename(source).replace(/\.ya?ml$/, '');
  const problems = crossCheck(policy);
  if (problems.length) throw invalidInput(`${source} is not a valid policy`, problems);
  return policy;
}

let defaultRaw: unknown;
function defaultBase(): unknown {
  defaultRaw ??= parseYaml(readText(shippedPath(DEFAULT_POLICY_PATH)), DEFAULT_POLICY_PATH);
  return defaultRaw;
}

/** Loads a policy file (or the shipped default when no path is given). */
export function loadPolicy(path?: string): Policy {
  if (path === undefined) return parsePolicy(readText(shippedPath(DEFAULT_POLICY_PATH)), DEFAULT_POLICY_PATH);
  try {
    return parsePolicy(readText(path), path, defaultBase());
  } catch (err) {
    if (err instanceof CanaryError) throw err;
    throw invalidInput(`cannot load policy ${path}: ${(err as Error).message}`);
  }
}
