// metav1.Status failures shaped and worded like kube-apiserver's (k8s.io/apimachinery
// pkg/api/errors), so code under test parses the same reason, code and message it would see live.

import { qualifiedKind, qualifiedResource, type ResourceType } from './discovery.js';
import type { JsonObject } from './types.js';

export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export class KubeHttpError extends Error {
  readonly code: number;
  readonly status: JsonObject;
  readonly headers: Record<string, string>;

  constructor(status: JsonObject, headers: Record<string, string> = {}) {
    super(String(status['message']));
    this.code = Number(status['code']);
    this.status = status;
    this.headers = headers;
  }
}

function failure(code: number, reason: string, message: string, details?: JsonObject): KubeHttpError {
  const status: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) status['details'] = details;
  return new KubeHttpError(status);
}

function resourceDetails(rt: ResourceType, name: string): JsonObject {
  const details: JsonObject = { name, kind: rt.resource };
  if (rt.group !== '') details['group'] = rt.group;
  return details;
}

export function notFound(rt: ResourceType, name: string): KubeHttpError {
  return failure(404, 'NotFound', `${qualifiedResource(rt)} "${name}" not found`, resourceDetails(rt, name));
}

export function namespaceNotFound(namespace: string): KubeHttpError {
  return failure(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
}

export function pathNotFound(): KubeHttpError {
  return failure(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function alreadyExists(rt: ResourceType, name: string): KubeHttpError {
  return failure(409, 'AlreadyExists', `${qualifiedResource(rt)} "${name}" already exists`, resourceDetails(rt, name));
}

export function conflict(rt: ResourceType, name: string, why: string): KubeHttpError {
  return failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(rt)} "${name}": ${why}`,
    resourceDetails(rt, name));
}

export const STALE_OBJECT = 'the object has been modified; please apply your changes to the latest version and try again';

export function invalid(rt: ResourceType, name: string, causes: readonly StatusCause[]): KubeHttpError {
  const summary = causes.map((c) => `${c.field}: ${c.message}`);
  const joined = summary.length === 1 ? summary[0] : `[${summary.join(', ')}]`;
  return failure(422, 'Invalid', `${qualifiedKind(rt)} "${name}" is invalid: ${joined}`, {
    name,
    ...(rt.group !== '' ? { group: rt.group } : {}),
    kind: rt.kind,
    causes: causes.map((c) => ({ reason: c.reason, message: c.message, field: c.field })),
  });
}

export function badRequest(message: string): KubeHttpError {
  return failure(400, 'BadRequest', message);
}

export function cannotDecode(rt: ResourceType, why: string): KubeHttpError {
  return badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: ${why}`);
}

export function unsupportedMediaType(contentType: string): KubeHttpError {
  return failure(415, 'UnsupportedMediaType',
    `the body of the request was in an unknown format (${contentType || 'no content type'}) - accepted media types ` +
      'include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json');
}

export function methodNotAllowed(): KubeHttpError {
  return failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}

export function unauthorized(): KubeHttpError {
  return failure(401, 'Unauthorized', 'Unauthorized');
}

export interface ForbiddenAttributes {
  user: string;
  verb: string;
  rt: ResourceType;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export function forbidden(a: ForbiddenAttributes): KubeHttpError {
  const target = a.name ? `${qualifiedResource(a.rt)} "${a.name}"` : qualifiedResource(a.rt);
  const resource = a.subresource ? `${a.rt.resource}/${a.subresource}` : a.rt.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const message =
    `${target} is forbidden: User "${a.user}" cannot ${a.verb} resource "${resource}" ` +
    `in API group "${a.rt.group}" ${scope}`;
  return failure(403, 'Forbidden', message, resourceDetails(a.rt, a.name ?? ''));
}

export function serverError(code: number, message?: string): KubeHttpError {
  const reasons: Record<number, [string, string]> = {
    500: ['InternalError', 'Internal error occurred: fake-kube injected fault'],
    502: ['InternalError', 'the server is currently unable to handle the request (bad gateway)'],
    503: ['ServiceUnavailable', 'the server is currently unable to handle the request'],
    504: ['Timeout', 'the server was unable to return a response in the time allotted, but may still be processing the request'],
  };
  const [reason, defaultMessage] = reasons[code] ?? ['InternalError', `fake-kube injected HTTP ${code}`];
  return failure(code, reason, message ?? defaultMessage, {});
}

export function tooManyRequests(retryAfterSeconds: number): KubeHttpError {
  const err = failure(429, 'TooManyRequests', 'Too many requests, please try again later.', {
    retryAfterSeconds,
  });
  return new KubeHttpError(err.status, { 'Retry-After': String(retryAfterSeconds) });
}

export function success(rt: ResourceType, name: string, uid: string | undefined): JsonObject {
  const details: JsonObject = { ...resourceDetails(rt, name) };
  if (uid) details['uid'] = uid;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
}
