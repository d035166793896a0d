import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { CanaryError, invalidInput } from '../errors.js';
import { PRESETS_BY_NAME } from '../analysis/presets.js';
import { unknownPlaceholders } from '../analysis/promql-template.js';
import { shippedPath } from '../paths.js';
import { policyFileSchema, type PolicyFile } from './schema.js';
import type { MetricSpec, Policy } from './policy.js';
import { describeInput, formatDuration } from './units.js';

export const DEFAULT_POLICY_PATH = 'policies/default.yaml';

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
const SECRET_PATH = /bearerToken|password/;
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

function crossCheck(file: PolicyFile, policy: Policy): string[] {
  const problems: string[] = [];
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
  const seen = new Set<string>();
  policy.analysis.metrics.forEach((metric, i) => {
    if (seen.has(metric.name)) problems.push(`spec.analysis.metrics[${i}].name: "${metric.name}" is used twice`);
    seen.add(metric.name);
    if (metric.type === 'query' && /^[a-zA-Z][\w-]*$/.test(metric.query) && !(metric.query in policy.analysis.queries)) {
      problems.push(
        `spec.analysis.metrics[${i}].query: expected a PromQL template or one of ${Object.keys(policy.analysis.queries).map((q) => `"${q}"`).join(', ')}, got "${metric.query}"`,
      );
    }
    if (metric.critical && !hasThreshold(metric)) {
      problems.push(`spec.analysis.metrics[${i}]: a critical metric needs a threshold ("max", "maxRatio" or "maxIncrease")`);
    }
    if (metric.type === 'query' && metric.judge === 'sequential') {
      problems.push(`spec.analysis.metrics[${i}].judge: "sequential" needs counts and works for "error-rate" and "latency" only`);
    }
  });
  const { alpha, beta } = policy.analysis.sequential;
  if (!(alpha > 0 && alpha <= 0.2)) problems.push(`spec.analysis.sequential.alpha: expected a small probability above 0 and at most 20%, like "1%", got ${alpha * 100}%`);
  if (!(beta > 0 && beta <= 0.5)) problems.push(`spec.analysis.sequential.beta: expected a probability above 0 and at most 50%, like "5%", got ${beta * 100}%`);
  const templates: [string, string][] = [
    ...Object.entries(policy.analysis.queries).map(([k, v]): [string, string] => [`spec.analysis.queries.${k}`, v]),
    ['spec.analysis.selectors.canary', policy.analysis.selectors.canary],
    ['spec.analysis.selectors.stable', policy.analysis.selectors.stable],
    ...policy.analysis.metrics.flatMap((m, i): [string, string][] =>
      m.type === 'query' && !(m.query in policy.analysis.queries) ? [[`spec.analysis.metrics[${i}].query`, m.query]] : [],
    ),
  ];
  for (const [path, template] of templates) {
    const unknown = unknownPlaceholders(template);
    if (unknown.length) problems.push(`${path}: unknown placeholder ${unknown.map((u) => `{{${u}}}`).join(', ')}`);
  }
  void file;
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
    intervalMs: spec.interval ?? 60_000,
    steps: (spec.steps ?? []).map((s) => ({ weight: s.weight, durationMs: s.duration })),
    analysis: {
      preset: a.preset ?? 'ingress-nginx',
      windowMs: a.window ?? spec.interval ?? 60_000,
      minRequests: a.minRequests ?? 20,
      failureLimit: a.failureLimit ?? 1,
      countFailures: a.countFailures ?? 'consecutive',
      inconclusiveLimit: a.inconclusiveLimit ?? 5,
      selectors: a.selectors ?? preset.selectors,
      queries: { ...preset.queries, ...(a.queries ?? {}) },
      metrics,
      sequential: {
        alpha: a.sequential?.alpha ?? 0.01,
        beta: a.sequential?.beta ?? 0.05,
        baselineMs: a.sequential?.baseline ?? 3_600_000,
      },
    },
    kubernetes: {
      attempts: spec.kubernetes?.attempts ?? 5,
      timeoutMs: spec.kubernetes?.timeout ?? 30_000,
      leaseDurationMs: spec.kubernetes?.leaseDuration ?? 60_000,
      readyTimeoutMs: spec.kubernetes?.readyTimeout ?? 600_000,
      pollIntervalMs: spec.kubernetes?.pollInterval ?? 2_000,
    },
    prometheus: {
      ...(p.url !== undefined && { url: p.url }),
      timeoutMs: p.timeout ?? 10_000,
      retries: p.retries ?? 3,
      ...(p.bearerToken && { bearerToken: p.bearerToken }),
      ...(p.basicAuth && { basicAuth: p.basicAuth }),
      headers: p.headers ?? {},
      ...(p.caFile !== undefined && { caFile: p.caFile }),
      insecureSkipVerify: p.insecureSkipVerify ?? false,
    },
    incidents: spec.incidents ?? [],
    ...(spec.dashboardUrl !== undefined && { dashboardUrl: spec.dashboardUrl }),
  } as Policy;
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
  const problems = crossCheck(result.data, policy);
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
