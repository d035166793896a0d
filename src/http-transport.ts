import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { AgentConnectOpts } from 'agent-base';
import axios, { type AxiosInstance, type CreateAxiosDefaults } from 'axios';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { CanaryError } from './errors.js';
import { registerUrlSecrets } from './secrets.js';

// The one HTTP stack for Prometheus and the incident sinks: axios over Node's agents, with the
// custom CA and the proxy settings users behind corporate proxies expect (HTTPS_PROXY,
// HTTP_PROXY, NO_PROXY, lower-case too). axios's own proxy support sends https requests to the
// proxy in the clear instead of tunnelling them with CONNECT, so it is switched off and the agent
// for each request is picked here: https targets through a CONNECT tunnel (https-proxy-agent),
// http targets as absolute-URI requests (http-proxy-agent), NO_PROXY hosts directly.

export interface TransportOptions {
  /** A PEM file with the CA that signs the servers' certificates; `caWhat` names the setting in errors. */
  caFile?: string;
  caWhat?: string;
  insecureSkipVerify?: boolean;
  /** Keep connections open between requests (default true); one-off deliveries turn it off. */
  keepAlive?: boolean;
  /** Defaults for every request (headers, timeout, validateStatus…); `proxy` is always off. */
  axios?: CreateAxiosDefaults;
}

export class HttpTransport {
  readonly http: AxiosInstance;
  private readonly tls: https.AgentOptions;
  private readonly direct: { http: http.Agent; https: https.Agent };
  private readonly proxied = new Map<string, http.Agent>();
  private readonly keepAlive: boolean;

  constructor(options: TransportOptions = {}) {
    let ca: Buffer | undefined;
    if (options.caFile) {
      try {
        ca = readFileSync(options.caFile);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'read error';
        throw new CanaryError('invalid-input', `${options.caWhat ?? 'caFile'}: cannot read ${options.caFile} (${code}); expected a PEM file with the CA certificate`);
      }
    }
    const keepAlive = options.keepAlive ?? true;
    this.keepAlive = keepAlive;
    this.tls = { keepAlive, ...(ca && { ca }), rejectUnauthorized: !options.insecureSkipVerify };
    this.direct = { http: new http.Agent({ keepAlive }), https: new https.Agent(this.tls) };
    this.http = axios.create({ ...options.axios, proxy: false });
    this.http.interceptors.request.use((config) => {
      const agent = this.agentFor(this.http.getUri(config));
      config.httpAgent = agent;
      config.httpsAgent = agent;
      return config;
    });
  }

  /** The agent a request to `url` goes through: direct, or through the proxy the environment names for it. */
  agentFor(url: string): http.Agent {
    const https = url.startsWith('https:');
    const proxy = getProxyForUrl(url);
    if (!proxy) return https ? this.direct.https : this.direct.http;
    const key = `${https ? 'https' : 'http'} ${proxy}`;
    let agent = this.proxied.get(key);
    if (!agent) {
      // A proxy URL can carry user:password@; it must never show up in a message.
      registerUrlSecrets(proxy);
      agent = https ? new TunnelAgent(proxy, this.tls) : new HttpProxyAgent(proxy, { keepAlive: this.keepAlive });
      this.proxied.set(key, agent);
    }
    return agent;
  }

  /** Releases kept-alive connections so the process can exit promptly. */
  close(): void {
    this.direct.http.destroy();
    this.direct.https.destroy();
    for (const agent of this.proxied.values()) agent.destroy();
    this.proxied.clear();
  }
}

/**
 * https-proxy-agent takes the TLS options for the server at the far end of the tunnel from each
 * request, and axios passes none: without this, the custom CA (and insecureSkipVerify) would hold
 * for direct connections only.
 */
class TunnelAgent extends HttpsProxyAgent<string> {
  constructor(
    proxy: string,
    private readonly targetTls: https.AgentOptions,
  ) {
    super(proxy, targetTls);
  }

  override connect(req: http.ClientRequest, opts: AgentConnectOpts): ReturnType<HttpsProxyAgent<string>['connect']> {
    const { ca, rejectUnauthorized } = this.targetTls;
    const host = opts.host;
    // The tunnel's TLS is set up without the target's host, and an IP address gets no SNI name to
    // stand in for it: check the certificate against the address itself, as a direct connection would.
    const identity = host && isIP(host) ? { checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert) } : {};
    return super.connect(req, { ...opts, ...identity, ...(ca !== undefined && { ca }), ...(rejectUnauthorized !== undefined && { rejectUnauthorized }) } as AgentConnectOpts);
  }
}
