import type { Deliverer, Delivery, DeliveryContext } from './delivery.js';
import { excerpt, expectSuccess, parseJson, send, type HttpTransport, type HttpResponse } from './http.js';
import { incidentMarkdown, rolloutMarker, type Incident } from './incident.js';
import { AttemptError, type Attempt } from './retry.js';

// A GitHub issue per rollout. The body carries a hidden marker with the rollout id; before opening
// an issue we look for an open one with that marker and comment on it instead. Every attempt looks
// again, so a retry after a lost "201 Created" answer finds the issue it made rather than opening
// a second one.
//
// The marker alone identifies the issue: people relabel issues while triaging, so the search does
// not filter by the configured labels. It lists open issues updated since the rollout started
// (an issue about the rollout cannot be older), which keeps a busy repository to a page or two,
// and uses the list endpoint rather than the search API, whose index lags by up to a minute and
// would miss the issue a lost "201 Created" just made.

const MAX_PAGES = 10;
/** Tolerated difference between this machine's clock and GitHub's. */
const CLOCK_SKEW_MS = 10 * 60_000;

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
    private readonly transport: HttpTransport,
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

  /** One request; each gets what is left of the delivery's deadline, not a fresh attempt timeout. */
  private async call(method: 'GET' | 'POST', path: string, attempt: Attempt, body?: unknown): Promise<HttpResponse> {
    const res = await send(
      this.transport,
      {
        method,
        url: `${this.target.apiUrl.replace(/\/+$/, '')}${path}`,
        headers: { ...this.headers(), ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      },
      'GitHub',
      attempt,
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

  /** The open issue already reporting this rollout, whatever its labels are now, if any. */
  private async findOpen(incident: Incident, attempt: Attempt): Promise<IssueSummary | null> {
    const marker = rolloutMarker(incident.rolloutId);
    const started = Date.parse(incident.startedAt);
    // A dry-run replay's start is the recording's time, which may even be ahead of this clock:
    // then no time bound is safe and every open issue is looked at.
    const since = Number.isFinite(started) && started <= Date.now() ? `&since=${new Date(started - CLOCK_SKEW_MS).toISOString()}` : '';
    for (let page = 1; page <= MAX_PAGES; page += 1) {
      const res = await this.call('GET', `/repos/${this.target.repository}/issues?state=open&per_page=100&page=${page}${since}`, attempt);
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
    const existing = await this.findOpen(incident, ctx);
    const body = incidentMarkdown(incident);
    if (existing && this.unsureCreates.has(ctx.deliveryId)) {
      // Our own earlier attempt created it after all; commenting would report the rollout twice.
      return { url: existing.html_url, message: `opened issue ${repository}#${existing.number}` };
    }
    if (existing) {
      const res = await this.call('POST', `/repos/${repository}/issues/${existing.number}/comments`, ctx, {
        body: `The same rollout was reported again.\n\n${body}`,
      });
      const comment = parseJson(res.text) as { html_url?: string } | undefined;
      return { url: existing.html_url, message: `commented on open issue ${repository}#${existing.number}${comment?.html_url ? ` (${comment.html_url})` : ''}` };
    }
    this.unsureCreates.add(ctx.deliveryId);
    const res = await this.call('POST', `/repos/${repository}/issues`, ctx, {
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
