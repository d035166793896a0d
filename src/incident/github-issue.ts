import type { Deliverer, Delivery, DeliveryContext } from './delivery.js';
import { excerpt, expectSuccess, parseJson, send, type Fetch, type HttpResponse } from './http.js';
import { incidentMarkdown, rolloutMarker, type Incident } from './incident.js';
import { AttemptError } from './retry.js';

// A GitHub issue per rollout. The body carries a hidden marker with the rollout id; before opening
// an issue we look for an open one with that marker and comment on it instead. Every attempt looks
// again, so a retry after a lost "201 Created" answer finds the issue it made rather than opening
// a second one.

const MAX_PAGES = 10;

export interface GitHubIssueTarget {
  name: string;
  repository: string;
  labels: string[];
  token: string;
  apiUrl: string;
}

interface IssueSummary {
  number: number;
  html_url: string;
  body?: string | null;
  pull_request?: unknown;
}

export class GitHubIssueDeliverer implements Deliverer {
  readonly name: string;
  readonly secrets: readonly string[];

  constructor(
    private readonly target: GitHubIssueTarget,
    private readonly fetchImpl: Fetch,
  ) {
    this.name = target.name;
    this.secrets = [target.token];
  }

  private headers(): Record<string, string> {
    return {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${this.target.token}`,
      'x-github-api-version': '2022-11-28',
      'user-agent': 'canary-incident',
    };
  }

  private async call(method: 'GET' | 'POST', path: string, timeoutMs: number, body?: unknown): Promise<HttpResponse> {
    const res = await send(
      this.fetchImpl,
      {
        method,
        url: `${this.target.apiUrl.replace(/\/+$/, '')}${path}`,
        headers: { ...this.headers(), ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        timeoutMs,
      },
      'GitHub',
    );
    // A 403 with no rate limit left is GitHub asking us to wait, not a permission problem.
    if (res.status === 403 && res.headers.get('x-ratelimit-remaining') === '0') {
      const reset = Number(res.headers.get('x-ratelimit-reset'));
      throw new AttemptError(
        `GitHub rate limit exhausted${Number.isFinite(reset) ? ` until ${new Date(reset * 1000).toISOString()}` : ''}`,
        true,
        Number.isFinite(reset) ? Math.max(0, reset * 1000 - Date.now()) : undefined,
      );
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      throw new AttemptError(
        `GitHub answered HTTP ${res.status} for ${method} ${path}: ${excerpt(res.text)}; expected a token with "issues: write" on ${this.target.repository}`,
        false,
      );
    }
    expectSuccess(res, `GitHub (${method} ${path})`);
    return res;
  }

  /** The open issue already reporting this rollout, if any. */
  private async findOpen(rolloutId: string, timeoutMs: number): Promise<IssueSummary | null> {
    const marker = rolloutMarker(rolloutId);
    const labels = this.target.labels.length ? `&labels=${encodeURIComponent(this.target.labels.join(','))}` : '';
    for (let page = 1; page <= MAX_PAGES; page += 1) {
      const res = await this.call('GET', `/repos/${this.target.repository}/issues?state=open&per_page=100&page=${page}${labels}`, timeoutMs);
      const issues = parseJson(res.text);
      if (!Array.isArray(issues)) throw new AttemptError(`GitHub answered a non-list for the open issues of ${this.target.repository}`, true);
      const found = (issues as IssueSummary[]).find((i) => !i.pull_request && typeof i.body === 'string' && i.body.includes(marker));
      if (found) return found;
      if (issues.length < 100) break;
    }
    return null;
  }

  /** Deliveries whose "create issue" request was sent but not answered with success. */
  private readonly unsureCreates = new Set<string>();

  async deliver(incident: Incident, ctx: DeliveryContext): Promise<Delivery> {
    const { repository } = this.target;
    const existing = await this.findOpen(incident.rolloutId, ctx.timeoutMs);
    const body = incidentMarkdown(incident);
    if (existing && this.unsureCreates.has(ctx.deliveryId)) {
      // Our own earlier attempt created it after all; commenting would report the rollout twice.
      return { url: existing.html_url, message: `opened issue ${repository}#${existing.number}` };
    }
    if (existing) {
      const res = await this.call('POST', `/repos/${repository}/issues/${existing.number}/comments`, ctx.timeoutMs, {
        body: `The same rollout was reported again.\n\n${body}`,
      });
      const comment = parseJson(res.text) as { html_url?: string } | undefined;
      return { url: existing.html_url, message: `commented on open issue ${repository}#${existing.number}${comment?.html_url ? ` (${comment.html_url})` : ''}` };
    }
    this.unsureCreates.add(ctx.deliveryId);
    const res = await this.call('POST', `/repos/${repository}/issues`, ctx.timeoutMs, {
      title: incident.title,
      body,
      labels: this.target.labels,
    });
    this.unsureCreates.delete(ctx.deliveryId);
    const created = parseJson(res.text) as { number?: number; html_url?: string } | undefined;
    return {
      ...(created?.html_url && { url: created.html_url }),
      message: `opened issue ${repository}#${created?.number ?? '?'}`,
    };
  }
}
