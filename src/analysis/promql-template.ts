// PromQL templates use {{name}} placeholders. Values that land inside a quoted label matcher are
// escaped so that a name can never change the shape of the query.

export type Side = 'canary' | 'stable';

export interface QueryTarget {
  namespace: string;
  ingress: string;
  stableService: string;
  canaryService: string;
  stableDeployment: string;
  canaryDeployment: string;
}

/** The query target of a rollout: its namespace and the names its policy gives the objects. */
export function queryTargetOf(
  namespace: string,
  names: { stableIngress: string; stableService: string; canaryService: string; stableDeployment: string; canaryDeployment: string },
): QueryTarget {
  return {
    namespace,
    ingress: names.stableIngress,
    stableService: names.stableService,
    canaryService: names.canaryService,
    stableDeployment: names.stableDeployment,
    canaryDeployment: names.canaryDeployment,
  };
}

export interface RenderOptions {
  side: Side;
  windowPromQL: string;
  quantile?: number;
  /** Label matcher selecting this side's traffic; itself a template, rendered first. */
  selector: string;
}

/** Escapes a value for a double-quoted PromQL string literal. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes a value for use as a literal inside a PromQL (RE2) regex matcher. */
export function escapeRegexValue(value: string): string {
  return escapeLabelValue(value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}

const PLACEHOLDER = /\{\{\s*([a-zA-Z]+)\s*\}\}/g;

export const PLACEHOLDERS = [
  'namespace',
  'ingress',
  'stableService',
  'canaryService',
  'stableDeployment',
  'canaryDeployment',
  'service',
  'deployment',
  'podRegex',
  'selector',
  'window',
  'quantile',
] as const;

// Looser than PLACEHOLDER on purpose: anything in double braces is reported if it is not known,
// so a typo like {{pod_regex}} is an error instead of text sent to Prometheus.
const ANY_PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

export function placeholdersIn(template: string): string[] {
  return [...template.matchAll(ANY_PLACEHOLDER)].map((m) => m[1] ?? '');
}

export function unknownPlaceholders(template: string): string[] {
  return placeholdersIn(template).filter((name) => !(PLACEHOLDERS as readonly string[]).includes(name));
}

function values(target: QueryTarget, side: Side): Record<string, string> {
  const deployment = side === 'canary' ? target.canaryDeployment : target.stableDeployment;
  return {
    namespace: escapeLabelValue(target.namespace),
    ingress: escapeLabelValue(target.ingress),
    stableService: escapeLabelValue(target.stableService),
    canaryService: escapeLabelValue(target.canaryService),
    stableDeployment: escapeLabelValue(target.stableDeployment),
    canaryDeployment: escapeLabelValue(target.canaryDeployment),
    service: escapeLabelValue(side === 'canary' ? target.canaryService : target.stableService),
    deployment: escapeLabelValue(deployment),
    // Deployment pods are <deployment>-<template hash>-<suffix>; anchoring both parts keeps
    // "checkout" from matching "checkout-canary" pods.
    podRegex: `${escapeRegexValue(deployment)}-[a-z0-9]+-[a-z0-9]+`,
  };
}

function substitute(template: string, vars: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => vars[name] ?? whole);
}

export function renderQuery(template: string, target: QueryTarget, options: RenderOptions): string {
  const base = values(target, options.side);
  const selector = substitute(options.selector, base);
  return substitute(template, {
    ...base,
    selector,
    window: options.windowPromQL,
    quantile: options.quantile === undefined ? '{{quantile}}' : String(options.quantile),
  });
}
