import https from 'node:https';
import type { HttpRoute } from '../../../src/k8s/httproute-types.js';

// A small client for the real kube-apiserver, used by the tests to seed, play the Deployment
// controller and read what the CLI left behind. Independent of the product's client on purpose:
// what the tests read is what the API server holds, not what our code thinks it wrote. Only the
// object metadata's type is the product's, so both name the same fields the same way.

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: NonNullable<HttpRoute['metadata']> & { [key: string]: unknown };
  [key: string]: unknown;
}

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly body: string,
  ) {
    super(`${method} ${path}: HTTP ${status} ${body.slice(0, 300)}`);
  }
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

export class KubeApi {
  constructor(
    readonly port: number,
    private readonly ca: string,
    private readonly token: string,
  ) {}

  request<T = KubeObject>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          ca: this.ca,
          headers: {
            Authorization: `Bearer ${this.token}`,
            Accept: 'application/json',
            ...(payload !== undefined ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) } : {}),
          },
          timeout: 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) reject(new KubeApiError(status, method, path, text));
            else resolve((text ? JSON.parse(text) : {}) as T);
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** The object, or undefined on 404. */
  async find<T = KubeObject>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  post<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  mergePatch<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body, 'application/merge-patch+json');
  }

  delete(path: string): Promise<KubeObject> {
    return this.request('DELETE', path);
  }

  async list(path: string): Promise<{ resourceVersion: string; items: KubeObject[] }> {
    const list = await this.get<{ metadata?: { resourceVersion?: string }; items?: KubeObject[] }>(path);
    return { resourceVersion: list.metadata?.resourceVersion ?? '0', items: list.items ?? [] };
  }

  /**
   * Streams watch events of a collection from `resourceVersion` until the server ends the stream
   * or `signal` aborts; resolves with the last resourceVersion seen, so the caller can resume.
   */
  watchOnce(path: string, resourceVersion: string, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let last = resourceVersion;
      const sep = path.includes('?') ? '&' : '?';
      const req = https.request(
        {
          host: '127.0.0.1',
          port: this.port,
          method: 'GET',
          path: `${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}&timeoutSeconds=60`,
          ca: this.ca,
          headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json' },
          signal,
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new KubeApiError(res.statusCode ?? 0, 'WATCH', path, ''));
            return;
          }
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffer += chunk;
            let nl: number;
            while ((nl = buffer.indexOf('\n')) >= 0) {
              const line = buffer.slice(0, nl).trim();
              buffer = buffer.slice(nl + 1);
              if (!line) continue;
              const event = JSON.parse(line) as WatchEvent;
              if (event.type === 'ERROR') {
                // 410 Gone: the version was compacted; the caller re-lists.
                reject(new KubeApiError(410, 'WATCH', path, JSON.stringify(event.object)));
                req.destroy();
                return;
              }
              last = event.object.metadata?.resourceVersion ?? last;
              if (event.type !== 'BOOKMARK') onEvent(event);
            }
          });
          res.on('end', () => resolve(last));
          res.on('error', () => resolve(last));
        },
      );
      req.on('error', (err) => (signal.aborted ? resolve(last) : reject(err)));
      req.end();
    });
  }
}
