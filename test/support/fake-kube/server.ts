// A Kubernetes API server for tests: real HTTP on 127.0.0.1 speaking the REST protocol kubectl
// and @kubernetes/client-node use, with the semantics the canary CLI depends on (resourceVersion
// preconditions, 409/404/422/403 Status bodies, merge patches, discovery, a deployment
// controller) and scriptable faults. Tests assert on the stored state and on the requests made.
//
// Not modelled, on purpose: server-side apply (apply-patch+yaml is 415), events.k8s.io/v1,
// finalizers and graceful deletion (deletes are immediate), watch bookmarks, admission beyond the
// checks in validation.ts. Strategic merge patch is approximated (see merge-patch.ts).

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessPolicy, type AccessRule } from './authz.js';
import { DeploymentController, settledStatus, type DeploymentBehavior } from './deployment-controller.js';
import {
  apiGroupDocument,
  apiGroupList,
  apiResourceList,
  apiVersionOf,
  apiVersions,
  findResource,
  resolveKind,
  RESOURCE_TYPES,
  resourceForObject,
  type ResourceType,
} from './discovery.js';
import { FaultPlan, type FaultHandle, type FaultSpec } from './faults.js';
import { writeKubeconfig } from './kubeconfig.js';
import { jsonPatch, mergePatch, PatchError, strategicMergePatch } from './merge-patch.js';
import { parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.js';
import {
  alreadyExists,
  badRequest,
  conflict,
  forbidden,
  invalid,
  KubeHttpError,
  methodNotAllowed,
  namespaceNotFound,
  notFound,
  pathNotFound,
  serverError,
  STALE_OBJECT,
  success,
  tooManyRequests,
  unauthorized,
  unsupportedMediaType,
} from './status.js';
import { ObjectStore, type Change } from './store.js';
import { toTable, wantsTable } from './tables.js';
import { clone, deepEqual, isJsonObject, type JsonObject, type JsonValue, type KubeObject } from './types.js';
import { applyDefaults, checkDecodable, validate } from './validation.js';

export type { AccessRule } from './authz.js';
export type { DeploymentBehavior } from './deployment-controller.js';
export type { FaultHandle, FaultSpec } from './faults.js';
export type { KubeObject } from './types.js';

export interface FakeKubeOptions {
  /** Simulate the deployment controller (default true). */
  controller?: boolean;
  /** Delay before the controller writes a Deployment's status after a spec change (default 50 ms). */
  controllerDelayMs?: number;
  /** Bearer token the server accepts (default: random). */
  token?: string;
  /** The user SelfSubjectAccessReviews and Forbidden messages speak for. */
  user?: string;
  /** Namespaces that exist from the start (default: default, kube-system). */
  namespaces?: readonly string[];
  /** Namespace of the kubeconfig's context (default: none, i.e. "default"). */
  kubeconfigNamespace?: string;
  /**
   * Requests without credentials: 'allow' (default) serves them, as the old insecure port did,
   * because client-go (kubectl) never sends a bearer token over plain http; 'reject' answers 401.
   * A wrong token is always 401.
   */
  anonymous?: 'allow' | 'reject';
  /** gitVersion served at /version (default v1.30.0). */
  serverVersion?: string;
}

export interface RecordedRequest {
  method: string;
  /** URL path without the query string. */
  path: string;
  /** Query string without the leading '?', '' when none. */
  query: string;
  contentType: string | undefined;
  /** Parsed JSON when the body was JSON, the raw text otherwise, undefined when empty. */
  body: JsonValue | string | undefined;
  /** HTTP status answered; 0 for a connection reset. */
  status: number;
  /** The bearer token sent: the kubeconfig's ('valid'), another ('invalid', answered 401), or none. */
  credentials: 'valid' | 'invalid' | 'absent';
  /** The kind of injected fault that answered, if one did. */
  fault?: FaultSpec['kind'];
}

export interface FakeKube {
  readonly url: string;
  readonly kubeconfigPath: string;
  /** The bearer token in the kubeconfig (tests use it to check that secrets are never printed). */
  readonly token: string;
  readonly user: string;
  /** Every request received, in order (live array). */
  readonly requests: RecordedRequest[];
  clearRequests(): void;
  /** Requests that could change state: POST, PUT, PATCH, DELETE. */
  writes(): RecordedRequest[];
  /** A stored object (a copy), or undefined. kind: 'Ingress', 'ingresses', 'ing', ... */
  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  list(kind: string, namespace?: string): KubeObject[];
  /** Seeds or overwrites an object as the server would store it (no auth, faults or recording). */
  put(obj: KubeObject): KubeObject;
  /** Deletes an object behind the clients' back; true when it existed. */
  remove(kind: string, namespace: string | undefined, name: string): boolean;
  /** Replaces the allow-list (default: everything allowed) and clears deny rules. */
  allow(rules: readonly AccessRule[]): void;
  /** Adds rules that are refused even when allowed. */
  deny(...rules: AccessRule[]): void;
  allowAll(): void;
  injectFault(fault: FaultSpec): FaultHandle;
  clearFaults(): void;
  setDeploymentBehavior(namespace: string, name: string, behavior: DeploymentBehavior): void;
  /** Resolves when the deployment controller has nothing pending. */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

const DEFAULT_USER = 'system:serviceaccount:ci:canary';
const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);
const HISTORY_LIMIT = 5000;

interface ParsedPath {
  rt: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

interface RequestContext {
  method: string;
  url: URL;
  accept: string | undefined;
  contentType: string;
  body: JsonValue | undefined;
}

function withTypeMeta(rt: ResourceType, obj: KubeObject): KubeObject {
  const { apiVersion: _a, kind: _k, ...rest } = obj;
  return { apiVersion: apiVersionOf(rt), kind: rt.kind, ...rest };
}

function generateSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join('');
}

export async function startFakeKube(options: FakeKubeOptions = {}): Promise<FakeKube> {
  const token = options.token ?? `fake-kube-${randomBytes(12).toString('hex')}`;
  const user = options.user ?? DEFAULT_USER;
  const store = new ObjectStore();
  const policy = new AccessPolicy();
  const faults = new FaultPlan();
  const requests: RecordedRequest[] = [];
  const history: Change[] = [];
  const watchers = new Set<ServerResponse>();
  const rtOf = (resource: string, group: string): ResourceType => {
    const found = findResource(group, 'v1', resource);
    if (!found) throw new Error(`fake-kube: no resource ${group}/${resource}`);
    return found;
  };
  const namespaces = rtOf('namespaces', '');
  const deployments = rtOf('deployments', 'apps');
  const controller = new DeploymentController(store, deployments, {
    enabled: options.controller ?? true,
    delayMs: options.controllerDelayMs ?? 50,
  });
  store.onChange((change) => {
    history.push(change);
    if (history.length > HISTORY_LIMIT) history.shift();
  });

  for (const ns of options.namespaces ?? ['default', 'kube-system']) {
    commitNew(namespaces, { metadata: { name: ns } });
  }

  // ---- storage semantics shared by the HTTP handlers and the seeding API ----

  function specOf(obj: KubeObject | undefined): unknown {
    return obj?.['spec'];
  }

  function commitNew(rt: ResourceType, obj: KubeObject, dryRun = false): KubeObject {
    const metadata = obj.metadata ?? {};
    obj.metadata = metadata;
    delete metadata.uid;
    delete metadata.resourceVersion;
    delete metadata.creationTimestamp;
    delete metadata['deletionTimestamp'];
    if (rt.hasGeneration) metadata.generation = 1;
    else delete metadata.generation;
    if (rt.kind === 'Deployment') obj['status'] = {};
    applyDefaults(rt, obj, undefined);
    const causes = validate(rt, obj, undefined);
    if (causes.length > 0) throw invalid(rt, metadata.name ?? '', causes);
    const typed = withTypeMeta(rt, obj);
    return dryRun ? typed : withTypeMeta(rt, store.write(rt, typed));
  }

  /**
   * The update path of PUT, PATCH and the subresources: preconditions, immutable metadata, status
   * ownership, generation, validation. A no-op update keeps the resourceVersion, as etcd does.
   */
  function commitUpdate(
    rt: ResourceType,
    old: KubeObject,
    incoming: KubeObject,
    mode: 'main' | 'status',
    dryRun = false,
  ): KubeObject {
    const name = old.metadata?.name ?? '';
    const metadata = incoming.metadata ?? {};
    incoming.metadata = metadata;
    if (metadata.resourceVersion && metadata.resourceVersion !== old.metadata?.resourceVersion) {
      throw conflict(rt, name, STALE_OBJECT);
    }
    if (metadata.name !== undefined && metadata.name !== name) {
      throw badRequest(`the name of the object (${metadata.name}) does not match the name on the URL (${name})`);
    }
    metadata.name = name;
    if (rt.namespaced) metadata.namespace = old.metadata?.namespace;
    metadata.uid = old.metadata?.uid;
    metadata.creationTimestamp = old.metadata?.creationTimestamp;
    metadata.resourceVersion = old.metadata?.resourceVersion;
    let next: KubeObject = incoming;
    if (mode === 'status') {
      next = { ...clone(old), status: clone(incoming['status'] as JsonValue) };
      if (next['status'] === undefined) delete next['status'];
    } else if (rt.hasStatus) {
      if (old['status'] === undefined) delete next['status'];
      else next['status'] = clone(old['status'] as JsonValue);
    }
    if (rt.hasGeneration) {
      const generation = old.metadata?.generation ?? 1;
      next.metadata = { ...next.metadata, generation: deepEqual(specOf(old), specOf(next)) ? generation : generation + 1 };
    }
    applyDefaults(rt, next, old);
    checkDecodable(rt, next);
    const causes = validate(rt, next, old);
    if (causes.length > 0) throw invalid(rt, name, causes);
    const typed = withTypeMeta(rt, next);
    if (deepEqual(typed, withTypeMeta(rt, old)) || dryRun) return typed;
    return withTypeMeta(rt, store.write(rt, typed));
  }

  // ---- HTTP ----

  function send(res: ServerResponse, code: number, body: JsonValue | KubeObject, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', ...headers });
    res.end(text);
  }

  function parsePath(pathname: string): ParsedPath | undefined {
    const segs = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs[1] === 'v1') {
      group = '';
      version = 'v1';
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 4) {
      group = segs[1] ?? '';
      version = segs[2] ?? '';
      rest = segs.slice(3);
    } else {
      return undefined;
    }
    let namespace: string | undefined;
    let resource: string | undefined;
    let name: string | undefined;
    let subresource: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      [, namespace, resource, name, subresource] = rest;
    } else {
      [resource, name, subresource] = rest;
    }
    if (rest.length > 5 || !resource) return undefined;
    const rt = findResource(group, version, resource);
    if (!rt) return undefined;
    if (!rt.namespaced && namespace !== undefined) return undefined;
    if (rt.namespaced && namespace === undefined && name !== undefined) return undefined;
    if (subresource !== undefined) {
      const known = (subresource === 'scale' && rt.hasScale) || (subresource === 'status' && rt.hasStatus);
      if (!known || name === undefined) return undefined;
    }
    return { rt, namespace, name, subresource };
  }

  function verbOf(method: string, p: ParsedPath, url: URL): string {
    const watch = url.searchParams.get('watch');
    switch (method) {
      case 'GET':
        if (watch === 'true' || watch === '1') return 'watch';
        return p.name ? 'get' : 'list';
      case 'POST':
        if (p.name) throw methodNotAllowed();
        return 'create';
      case 'PUT':
        if (!p.name) throw methodNotAllowed();
        return 'update';
      case 'PATCH':
        if (!p.name) throw methodNotAllowed();
        return 'patch';
      case 'DELETE':
        return p.name ? 'delete' : 'deletecollection';
      default:
        throw methodNotAllowed();
    }
  }

  function requireBodyObject(rt: ResourceType, body: JsonValue | undefined): KubeObject {
    if (!isJsonObject(body)) throw badRequest('the body of the request must be a JSON object');
    const obj = clone(body) as KubeObject;
    if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersionOf(rt)) {
      throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${apiVersionOf(rt)})`);
    }
    if (obj.kind !== undefined && obj.kind !== rt.kind) {
      throw badRequest(`the object provided is unrecognized (must be of type ${rt.kind}): kind ${String(obj.kind)}`);
    }
    if (obj.metadata !== undefined && !isJsonObject(obj.metadata)) throw badRequest('metadata must be an object');
    return obj;
  }

  function patched(ctx: RequestContext, current: KubeObject): KubeObject {
    const type = ctx.contentType.split(';')[0]?.trim() ?? '';
    if (ctx.body === undefined) throw badRequest('the body of the request was empty');
    try {
      let result: JsonValue;
      const doc = current as JsonValue;
      if (type === 'application/merge-patch+json') result = mergePatch(doc, ctx.body);
      else if (type === 'application/strategic-merge-patch+json') result = strategicMergePatch(doc, ctx.body);
      else if (type === 'application/json-patch+json') result = jsonPatch(doc, ctx.body);
      else throw unsupportedMediaType(type);
      if (!isJsonObject(result)) throw badRequest('the patch produced something other than an object');
      return result as KubeObject;
    } catch (err) {
      if (err instanceof PatchError) {
        const status = badRequest(err.message);
        status.status['code'] = 422;
        status.status['reason'] = 'Invalid';
        throw new KubeHttpError(status.status);
      }
      throw err;
    }
  }

  /** A patch that carries metadata.resourceVersion makes it a precondition, as on a real server. */
  function patchPrecondition(rt: ResourceType, ctx: RequestContext, current: KubeObject, result: KubeObject): void {
    const wanted = result.metadata?.resourceVersion;
    if (wanted !== undefined && wanted !== current.metadata?.resourceVersion) {
      throw conflict(rt, current.metadata?.name ?? '', STALE_OBJECT);
    }
    if (result.metadata?.uid !== undefined && result.metadata.uid !== current.metadata?.uid) {
      throw conflict(rt, current.metadata?.name ?? '', `Precondition failed: UID in precondition: ${String(result.metadata?.uid)}, UID in object meta: ${String(current.metadata?.uid)}`);
    }
  }

  function scaleOf(deployment: KubeObject): KubeObject {
    const spec = isJsonObject(deployment['spec']) ? deployment['spec'] : {};
    const status = isJsonObject(deployment['status']) ? deployment['status'] : {};
    const matchLabels = isJsonObject(spec['selector']) && isJsonObject(spec['selector']['matchLabels']) ? spec['selector']['matchLabels'] : {};
    const m = deployment.metadata ?? {};
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
      spec: { replicas: typeof spec['replicas'] === 'number' ? spec['replicas'] : 0 },
      status: {
        replicas: typeof status['replicas'] === 'number' ? status['replicas'] : 0,
        selector: Object.entries(matchLabels).map(([k, v]) => `${k}=${String(v)}`).join(','),
      },
    };
  }

  function handleSubresource(ctx: RequestContext, p: ParsedPath, verb: string, res: ServerResponse): void {
    const { rt, namespace } = p;
    const name = p.name ?? '';
    const dryRun = ctx.url.searchParams.get('dryRun') === 'All';
    const current = store.get(rt, namespace, name);
    if (!current) throw notFound(rt, name);
    if (p.subresource === 'status') {
      if (verb === 'get') return send(res, 200, withTypeMeta(rt, current));
      const incoming = verb === 'update' ? requireBodyObject(rt, ctx.body) : patched(ctx, withTypeMeta(rt, current));
      return send(res, 200, commitUpdate(rt, current, incoming, 'status', dryRun));
    }
    const scale = scaleOf(current);
    if (verb === 'get') return send(res, 200, scale);
    let wanted: KubeObject;
    if (verb === 'update') {
      if (!isJsonObject(ctx.body)) throw badRequest('the body of the request must be a Scale object');
      wanted = ctx.body as KubeObject;
    } else {
      wanted = patched(ctx, scale);
    }
    const replicas = isJsonObject(wanted['spec']) ? wanted['spec']['replicas'] : undefined;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw invalid({ ...rt, kind: 'Scale', group: 'autoscaling' }, name, [
        { reason: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` },
      ]);
    }
    const next = clone(current);
    next['spec'] = { ...(isJsonObject(next['spec']) ? next['spec'] : {}), replicas };
    if (next.metadata) next.metadata.resourceVersion = wanted.metadata?.resourceVersion ?? current.metadata?.resourceVersion;
    const stored = commitUpdate(rt, current, next, 'main', dryRun);
    send(res, 200, scaleOf(stored));
  }

  function listMatching(rt: ResourceType, namespace: string | undefined, url: URL): KubeObject[] {
    try {
      const labels = parseLabelSelector(url.searchParams.get('labelSelector'));
      const fields = parseFieldSelector(url.searchParams.get('fieldSelector'), [
        'metadata.name',
        'metadata.namespace',
        ...(rt.extraFieldSelectors ?? []),
      ]);
      return store.list(rt, namespace).filter((o) => labels(o) && fields(o));
    } catch (err) {
      if (err instanceof SelectorError) throw badRequest(err.message);
      throw err;
    }
  }

  function handleList(ctx: RequestContext, p: ParsedPath, res: ServerResponse): void {
    const { rt } = p;
    const all = listMatching(rt, p.namespace, ctx.url);
    const offset = Number(Buffer.from(ctx.url.searchParams.get('continue') ?? '', 'base64url').toString() || '0');
    const limit = Number(ctx.url.searchParams.get('limit') ?? '0');
    const page = limit > 0 ? all.slice(offset, offset + limit) : all.slice(offset);
    const listMeta: JsonObject = { resourceVersion: store.currentRevision };
    if (limit > 0 && offset + limit < all.length) {
      listMeta['continue'] = Buffer.from(String(offset + limit)).toString('base64url');
      listMeta['remainingItemCount'] = all.length - offset - limit;
    }
    const table = wantsTable(ctx.accept);
    if (table) {
      const typed = page.map((o) => withTypeMeta(rt, o));
      return send(res, 200, toTable(rt, typed, listMeta, table, ctx.url.searchParams.get('includeObject')));
    }
    // Items of a typed list carry no apiVersion/kind on the wire, as with a real server.
    const items = page.map(({ apiVersion: _a, kind: _k, ...rest }) => rest as JsonObject);
    send(res, 200, { kind: `${rt.kind}List`, apiVersion: apiVersionOf(rt), metadata: listMeta, items });
  }

  function handleWatch(ctx: RequestContext, p: ParsedPath, req: IncomingMessage, res: ServerResponse): void {
    const { rt, namespace } = p;
    let labels: ReturnType<typeof parseLabelSelector>;
    let fields: ReturnType<typeof parseFieldSelector>;
    try {
      labels = parseLabelSelector(ctx.url.searchParams.get('labelSelector'));
      fields = parseFieldSelector(ctx.url.searchParams.get('fieldSelector'), [
        'metadata.name', 'metadata.namespace', ...(rt.extraFieldSelectors ?? []),
      ]);
    } catch (err) {
      if (err instanceof SelectorError) throw badRequest(err.message);
      throw err;
    }
    const relevant = (c: Change): boolean =>
      c.rt === rt && (!rt.namespaced || !namespace || c.object.metadata?.namespace === namespace) && labels(c.object) && fields(c.object);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    // Clients wait for the headers before they start reading; a real server sends them at once.
    res.flushHeaders();
    const emit = (type: string, object: KubeObject | JsonObject): void => {
      res.write(JSON.stringify({ type, object }) + '\n');
    };
    const since = ctx.url.searchParams.get('resourceVersion');
    if (!since || since === '0') {
      for (const obj of listMatching(rt, namespace, ctx.url)) emit('ADDED', withTypeMeta(rt, obj));
    } else {
      const from = Number(since);
      const oldest = history[0]?.resourceVersion ?? Number(store.currentRevision) + 1;
      if (history.length >= HISTORY_LIMIT && from < oldest - 1) {
        emit('ERROR', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
          message: `too old resource version: ${from} (${oldest - 1})`, reason: 'Expired', code: 410 });
        res.end();
        return;
      }
      for (const c of history) if (c.resourceVersion > from && relevant(c)) emit(c.type, withTypeMeta(rt, c.object));
    }
    watchers.add(res);
    const unsubscribe = store.onChange((c) => {
      if (relevant(c)) emit(c.type, withTypeMeta(rt, c.object));
    });
    const finish = (): void => {
      unsubscribe();
      watchers.delete(res);
      clearTimeout(timer);
      if (!res.writableEnded) res.end();
    };
    const timeoutSeconds = Number(ctx.url.searchParams.get('timeoutSeconds') ?? '0');
    const timer = setTimeout(finish, timeoutSeconds > 0 ? timeoutSeconds * 1000 : 30 * 60 * 1000);
    timer.unref();
    req.on('close', finish);
    res.on('close', finish);
  }

  function handleResource(ctx: RequestContext, p: ParsedPath, req: IncomingMessage, res: ServerResponse): void {
    const { rt, namespace } = p;
    const verb = verbOf(ctx.method, p, ctx.url);
    const effectiveVerbs = p.subresource ? ['get', 'patch', 'update'] : rt.verbs;
    if (!effectiveVerbs.includes(verb)) throw methodNotAllowed();

    if (rt.kind === 'SelfSubjectAccessReview') return handleAccessReview(ctx, res);

    const attrs = { verb, group: rt.group, resource: rt.resource, namespace };
    if (!policy.allows(p.subresource ? { ...attrs, subresource: p.subresource } : attrs)) {
      throw forbidden({ user, verb, rt, ...(p.subresource ? { subresource: p.subresource } : {}),
        ...(namespace ? { namespace } : {}), ...(p.name ? { name: p.name } : {}) });
    }
    if (p.subresource) return handleSubresource(ctx, p, verb, res);

    const dryRun = ctx.url.searchParams.get('dryRun') === 'All';
    const name = p.name ?? '';
    switch (verb) {
      case 'list':
        return handleList(ctx, p, res);
      case 'watch':
        return handleWatch(ctx, p, req, res);
      case 'get': {
        const found = store.get(rt, namespace, name);
        if (!found) throw notFound(rt, name);
        const table = wantsTable(ctx.accept);
        if (table) {
          const listMeta = { resourceVersion: found.metadata?.resourceVersion ?? '' };
          return send(res, 200, toTable(rt, [withTypeMeta(rt, found)], listMeta, table, ctx.url.searchParams.get('includeObject')));
        }
        return send(res, 200, withTypeMeta(rt, found));
      }
      case 'create': {
        const obj = requireBodyObject(rt, ctx.body);
        const metadata = obj.metadata ?? {};
        obj.metadata = metadata;
        if (!metadata.name && metadata.generateName) metadata.name = `${metadata.generateName}${generateSuffix()}`;
        if (rt.namespaced) {
          if (metadata.namespace !== undefined && metadata.namespace !== '' && metadata.namespace !== namespace) {
            throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
          }
          metadata.namespace = namespace;
          if (!store.get(namespaces, undefined, namespace ?? '')) throw namespaceNotFound(namespace ?? '');
        }
        checkDecodable(rt, obj);
        if (metadata.name && store.get(rt, namespace, metadata.name)) throw alreadyExists(rt, metadata.name);
        return send(res, 201, commitNew(rt, obj, dryRun));
      }
      case 'update': {
        const obj = requireBodyObject(rt, ctx.body);
        if (rt.namespaced && obj.metadata?.namespace && obj.metadata.namespace !== namespace) {
          throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
        }
        const current = store.get(rt, namespace, name);
        if (!current) throw notFound(rt, name);
        return send(res, 200, commitUpdate(rt, current, obj, 'main', dryRun));
      }
      case 'patch': {
        const current = store.get(rt, namespace, name);
        if (!current) throw notFound(rt, name);
        const typedCurrent = withTypeMeta(rt, current);
        const result = patched(ctx, typedCurrent);
        patchPrecondition(rt, ctx, typedCurrent, result);
        return send(res, 200, commitUpdate(rt, current, result, 'main', dryRun));
      }
      case 'delete': {
        const current = store.get(rt, namespace, name);
        if (!current) throw notFound(rt, name);
        const preconditions = isJsonObject(ctx.body) && isJsonObject(ctx.body['preconditions']) ? ctx.body['preconditions'] : {};
        const wantedRv = preconditions['resourceVersion'];
        if (typeof wantedRv === 'string' && wantedRv !== current.metadata?.resourceVersion) {
          throw conflict(rt, name, `the ResourceVersion in the precondition (${wantedRv}) does not match the ResourceVersion in record (${String(current.metadata?.resourceVersion)}). The object might have been modified`);
        }
        const wantedUid = preconditions['uid'];
        if (typeof wantedUid === 'string' && wantedUid !== current.metadata?.uid) {
          throw conflict(rt, name, `the UID in the precondition (${wantedUid}) does not match the UID in record (${String(current.metadata?.uid)}). The object might have been deleted and then recreated`);
        }
        if (!dryRun) deleteObject(rt, namespace, name);
        return send(res, 200, success(rt, name, current.metadata?.uid));
      }
      case 'deletecollection': {
        const doomed = listMatching(rt, namespace, ctx.url);
        if (!dryRun) for (const o of doomed) deleteObject(rt, o.metadata?.namespace, o.metadata?.name ?? '');
        const items = doomed.map(({ apiVersion: _a, kind: _k, ...rest }) => rest as JsonObject);
        return send(res, 200, { kind: `${rt.kind}List`, apiVersion: apiVersionOf(rt), metadata: { resourceVersion: store.currentRevision }, items });
      }
      default:
        throw methodNotAllowed();
    }
  }

  function deleteObject(rt: ResourceType, namespace: string | undefined, name: string): boolean {
    const gone = store.delete(rt, namespace, name);
    if (gone && rt === namespaces) {
      // Namespace deletion is immediate here: its contents go with it.
      for (const other of RESOURCE_TYPES) {
        if (!other.namespaced) continue;
        for (const o of store.list(other, name)) store.delete(other, name, o.metadata?.name ?? '');
      }
    }
    return gone !== undefined;
  }

  function handleAccessReview(ctx: RequestContext, res: ServerResponse): void {
    if (!isJsonObject(ctx.body) || !isJsonObject(ctx.body['spec'])) {
      throw badRequest('SelfSubjectAccessReview needs a spec');
    }
    const review = clone(ctx.body) as JsonObject;
    const spec = review['spec'] as JsonObject;
    const attrs = spec['resourceAttributes'];
    let allowed = true;
    if (isJsonObject(attrs)) {
      const str = (v: JsonValue | undefined): string => (typeof v === 'string' ? v : '');
      const subresource = str(attrs['subresource']);
      const namespace = str(attrs['namespace']);
      allowed = policy.allows({
        verb: str(attrs['verb']),
        group: str(attrs['group']),
        resource: str(attrs['resource']),
        ...(subresource ? { subresource } : {}),
        ...(namespace ? { namespace } : {}),
      });
    } else if (!isJsonObject(spec['nonResourceAttributes'])) {
      const cause = { reason: 'FieldValueRequired', field: 'spec.resourceAttributes', message: 'Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified' };
      throw invalid(resolveKind('SelfSubjectAccessReview'), '', [cause]);
    }
    review['apiVersion'] = 'authorization.k8s.io/v1';
    review['kind'] = 'SelfSubjectAccessReview';
    review['metadata'] = { creationTimestamp: null };
    review['status'] = allowed ? { allowed: true, reason: 'fake-kube: allowed by the allow-list' } : { allowed: false };
    send(res, 201, review);
  }

  function handleNonResource(ctx: RequestContext, res: ServerResponse): boolean {
    const path = ctx.url.pathname.replace(/\/+$/, '') || '/';
    if (ctx.method !== 'GET') return false;
    if (path === '/version') {
      const gitVersion = options.serverVersion ?? 'v1.30.0';
      const [major = '1', minor = '30'] = gitVersion.replace(/^v/, '').split('.');
      send(res, 200, { major, minor, gitVersion, gitCommit: 'fake-kube', gitTreeState: 'clean', buildDate: '2024-01-01T00:00:00Z',
        goVersion: 'go1.22.0', compiler: 'gc', platform: 'linux/amd64' });
      return true;
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return true;
    }
    if (path === '/api') {
      send(res, 200, apiVersions(ctx.url.host));
      return true;
    }
    if (path === '/apis') {
      send(res, 200, apiGroupList());
      return true;
    }
    const segs = path.split('/').filter((s) => s !== '');
    if (segs[0] === 'api' && segs.length === 2) {
      const doc = apiResourceList('', segs[1] ?? '');
      if (!doc) throw pathNotFound();
      send(res, 200, doc);
      return true;
    }
    if (segs[0] === 'apis' && segs.length === 2) {
      const doc = apiGroupDocument(segs[1] ?? '');
      if (!doc) throw pathNotFound();
      send(res, 200, doc);
      return true;
    }
    if (segs[0] === 'apis' && segs.length === 3) {
      const doc = apiResourceList(segs[1] ?? '', segs[2] ?? '');
      if (!doc) throw pathNotFound();
      send(res, 200, doc);
      return true;
    }
    return false;
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    const contentType = req.headers['content-type'];
    const raw = await readBody(req);
    let body: JsonValue | undefined;
    let bodyError: KubeHttpError | undefined;
    if (raw !== '') {
      try {
        body = JSON.parse(raw) as JsonValue;
      } catch (err) {
        bodyError = badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
      }
    }
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query: url.search.replace(/^\?/, ''),
      contentType,
      body: body ?? (raw === '' ? undefined : raw),
      status: 0,
      credentials: !req.headers.authorization ? 'absent' : req.headers.authorization === `Bearer ${token}` ? 'valid' : 'invalid',
    };
    requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });

    const fault = faults.take(method, url.pathname);
    if (fault) {
      record.fault = fault.kind;
      if (fault.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (fault.kind === 'latency') {
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
      } else if (fault.kind === 'hold') {
        await fault.until;
      } else if (fault.kind === 'before') {
        fault.run();
      } else {
        const err = fault.kind === '429' ? tooManyRequests(fault.retryAfterSeconds ?? 1) : serverError(fault.code, fault.message);
        send(res, err.code, err.status, err.headers);
        return;
      }
    }

    try {
      if (record.credentials === 'invalid') throw unauthorized();
      if (record.credentials === 'absent' && options.anonymous === 'reject' && !PUBLIC_PATHS.has(url.pathname)) {
        throw unauthorized();
      }
      if (bodyError) throw bodyError;
      const ctx: RequestContext = { method, url, accept: req.headers.accept, contentType: contentType ?? '', body };
      if (handleNonResource(ctx, res)) return;
      const parsed = parsePath(url.pathname);
      if (!parsed) throw pathNotFound();
      handleResource(ctx, parsed, req, res);
    } catch (err) {
      if (err instanceof KubeHttpError) {
        send(res, err.code, err.status, err.headers);
        return;
      }
      const internal = serverError(500, `Internal error occurred: fake-kube: ${(err as Error).message}`);
      send(res, 500, internal.status);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, serverError(500, String(err)).status);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const dir = await mkdtemp(join(tmpdir(), 'fake-kube-'));
  const kubeconfigPath = await writeKubeconfig(join(dir, 'kubeconfig'), {
    server: url,
    token,
    ...(options.kubeconfigNamespace ? { namespace: options.kubeconfigNamespace } : {}),
  });

  function seed(obj: KubeObject): KubeObject {
    const rt = obj.kind ? resourceForObject(obj.apiVersion ?? '', obj.kind) ?? resolveKind(obj.kind) : undefined;
    if (!rt) throw new Error('fake.put needs an object with kind (and apiVersion)');
    const copy = clone(obj);
    const metadata = copy.metadata ?? {};
    copy.metadata = metadata;
    const name = metadata.name ?? '';
    if (rt.namespaced) {
      metadata.namespace ??= 'default';
      if (!store.get(namespaces, undefined, metadata.namespace)) commitNew(namespaces, { metadata: { name: metadata.namespace } });
    }
    const existing = store.get(rt, metadata.namespace, name);
    checkDecodable(rt, copy);
    applyDefaults(rt, copy, existing);
    const causes = validate(rt, copy, undefined);
    if (causes.length > 0) throw new Error(`fake.put: ${invalid(rt, name, causes).message}`);
    metadata.uid = existing?.metadata?.uid ?? metadata.uid;
    metadata.creationTimestamp = existing?.metadata?.creationTimestamp ?? metadata.creationTimestamp;
    if (rt.hasGeneration) {
      const generation = existing?.metadata?.generation;
      metadata.generation = generation === undefined ? 1 : deepEqual(specOf(existing), specOf(copy)) ? generation : generation + 1;
    }
    if (rt === deployments && copy['status'] === undefined) {
      // Seeded deployments start settled, so a test's world is ready before the CLI runs.
      const behavior = controller.behaviorOf(metadata.namespace ?? '', name);
      if (behavior !== 'frozen') copy['status'] = settledStatus(copy, behavior);
    }
    return withTypeMeta(rt, store.write(rt, withTypeMeta(rt, copy)));
  }

  return {
    url,
    kubeconfigPath,
    token,
    user,
    requests,
    clearRequests: () => {
      requests.length = 0;
    },
    writes: () => requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD'),
    get: (kind, namespace, name) => {
      const rt = resolveKind(kind);
      const found = store.get(rt, namespace, name);
      return found ? withTypeMeta(rt, found) : undefined;
    },
    list: (kind, namespace) => {
      const rt = resolveKind(kind);
      return store.list(rt, namespace).map((o) => withTypeMeta(rt, o));
    },
    put: seed,
    remove: (kind, namespace, name) => deleteObject(resolveKind(kind), namespace, name),
    allow: (rules) => policy.allow(rules),
    deny: (...rules) => policy.deny(rules),
    allowAll: () => policy.allowAll(),
    injectFault: (fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    setDeploymentBehavior: (namespace, name, behavior) => controller.setBehavior(namespace, name, behavior),
    settled: () => controller.idle(),
    stop: async () => {
      controller.stop();
      for (const w of watchers) w.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
