import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CanaryError } from '../../src/errors.js';
import { rolloutMarker } from '../../src/incident/incident.js';
import { createIncidentSinks } from '../../src/incident/sinks.js';
import type { RolloutRecord } from '../../src/rollout/record.js';
import { policyFrom, rolledBackRecord, RUN_URL } from '../support/incident-fixtures.js';

const TOKEN = 'ghs_canaryTestToken0123456789abcdefXYZ';
const API = 'https://api.github.com';
const ISSUES = '/repos/acme/shop/issues';
const MARKER = rolloutMarker('checkout-20260115T100000Z');
const noWait = { sleep: async () => undefined };

let record: RolloutRecord;
beforeAll(async () => {
  record = await rolledBackRecord();
});
afterEach(() => {
  nock.cleanAll();
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

function githubSink(extra = '') {
  const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: github-issue
      labels: [canary, incident]${extra}
`);
  vi.stubEnv('GITHUB_TOKEN', TOKEN);
  vi.stubEnv('GITHUB_REPOSITORY', 'acme/shop');
  vi.stubEnv('GITHUB_API_URL', API);
  const [sink] = createIncidentSinks(policy.incidents, { retry: noWait });
  return sink!;
}

/** Open issues updated since shortly before the rollout started, whatever their labels. */
const SINCE = '2026-01-15T09:50:00.000Z';
const openIssues = (page = 1) =>
  nock(API, { reqheaders: { authorization: `Bearer ${TOKEN}`, 'x-github-api-version': '2022-11-28' } })
    .get(ISSUES)
    .query({ state: 'open', per_page: '100', page: String(page), since: SINCE });

describe('GitHub issue sink', () => {
  it('opens an issue in GITHUB_REPOSITORY with the labels, the evidence and a rollout marker', async () => {
    let created: { title: string; body: string; labels: string[] } | undefined;
    const list = openIssues().reply(200, [{ number: 7, html_url: `https://github.com/acme/shop/issues/7`, body: 'unrelated' }]);
    const create = nock(API)
      .post(ISSUES, (body: { title: string; body: string; labels: string[] }) => {
        created = body;
        return true;
      })
      .reply(201, { number: 12, html_url: 'https://github.com/acme/shop/issues/12' });
    const result = await githubSink().open(record);
    expect(list.isDone() && create.isDone()).toBe(true);
    expect(result).toEqual({ sink: 'github-issue', ok: true, url: 'https://github.com/acme/shop/issues/12', message: 'opened issue acme/shop#12' });
    expect(created?.title).toBe('Canary rolled back: checkout in shop (shop/checkout:2)');
    expect(created?.labels).toEqual(['canary', 'incident']);
    expect(created?.body.startsWith(MARKER)).toBe(true);
    expect(created?.body).toContain('| Images | stable `shop/checkout:1` → canary `shop/checkout:2` |');
    expect(created?.body).toContain('| 21 (25%, 2026-01-15T10:21:00.000Z) | error-rate | error rate ≤ 5% | 12% | 0.51% | 5% | fail |');
    expect(created?.body).toContain(`| Started by | [${RUN_URL}](${RUN_URL}) |`);
    expect(created?.body).not.toContain(TOKEN);
  });

  it('comments on the open issue of the same rollout instead of opening a second', async () => {
    let comment: string | undefined;
    openIssues().reply(200, [
      { number: 3, html_url: 'https://github.com/acme/shop/pull/3', body: MARKER, pull_request: {} },
      { number: 9, html_url: 'https://github.com/acme/shop/issues/9', body: `${MARKER}\nearlier report` },
    ]);
    const commented = nock(API)
      .post(`${ISSUES}/9/comments`, (body: { body: string }) => {
        comment = body.body;
        return true;
      })
      .reply(201, { html_url: 'https://github.com/acme/shop/issues/9#issuecomment-1' });
    const result = await githubSink().open(record);
    expect(commented.isDone()).toBe(true);
    expect(result).toMatchObject({ ok: true, url: 'https://github.com/acme/shop/issues/9', message: 'commented on open issue acme/shop#9 (https://github.com/acme/shop/issues/9#issuecomment-1)' });
    expect(comment).toMatch(/^The same rollout was reported again\./);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('comments on the issue of the same rollout after triage removed its labels', async () => {
    const triaged = { number: 21, html_url: 'https://github.com/acme/shop/issues/21', body: `${MARKER}\nearlier report`, labels: [{ name: 'triaged' }] };
    // As GitHub answers: a label filter leaves the relabelled issue out.
    nock(API)
      .get(ISSUES)
      .query(true)
      .reply((uri) => [200, new URL(uri, API).searchParams.has('labels') ? [] : [triaged]]);
    const commented = nock(API).post(`${ISSUES}/21/comments`).reply(201, { html_url: 'https://github.com/acme/shop/issues/21#issuecomment-2' });
    const created = nock(API).post(ISSUES).reply(201, { number: 22, html_url: 'https://github.com/acme/shop/issues/22' });
    const result = await githubSink().open(record);
    expect(commented.isDone()).toBe(true);
    expect(created.isDone()).toBe(false);
    expect(result).toMatchObject({ ok: true, url: 'https://github.com/acme/shop/issues/21', message: expect.stringMatching(/^commented on open issue acme\/shop#21/) });
  });

  it('keeps all its requests within the delivery time limit, and stops at it', async () => {
    // Virtual time: each GitHub answer takes 4 s; the sink has 5 s in all.
    let now = 0;
    const timeouts = vi.spyOn(AbortSignal, 'timeout');
    const page = Array.from({ length: 100 }, (_, i) => ({ number: 100 + i, html_url: `https://github.com/acme/shop/issues/${100 + i}`, body: 'other' }));
    const slow = () => {
      now += 4_000;
      return [200, page] as [number, unknown];
    };
    openIssues(1).reply(slow);
    openIssues(2).reply(slow);
    const created = nock(API).post(ISSUES).reply(201, { number: 1, html_url: 'https://github.com/acme/shop/issues/1' });
    const policy = policyFrom(`apiVersion: canary/v1
kind: RolloutPolicy
spec:
  incidents:
    - type: github-issue
      timeout: 5s
`);
    vi.stubEnv('GITHUB_TOKEN', TOKEN);
    vi.stubEnv('GITHUB_REPOSITORY', 'acme/shop');
    vi.stubEnv('GITHUB_API_URL', API);
    const [sink] = createIncidentSinks(policy.incidents, { retry: { now: () => now, sleep: async (ms: number) => void (now += ms) } });
    const result = await sink!.open(record);
    // The second page gets the 1 s left, not a fresh 5 s; no third request is started.
    expect(timeouts.mock.calls.map(([ms]) => ms)).toEqual([5_000, 1_000]);
    expect(created.isDone()).toBe(false);
    expect(result).toEqual({ sink: 'github-issue', ok: false, message: 'GitHub: not sent: the 5s delivery limit was reached' });
  });

  it('after a 502 on create, finds the issue that request made rather than opening another', async () => {
    openIssues().reply(200, []);
    nock(API).post(ISSUES).reply(502, 'Bad Gateway');
    openIssues().reply(200, [{ number: 13, html_url: 'https://github.com/acme/shop/issues/13', body: `${MARKER}\n…` }]);
    const result = await githubSink().open(record);
    expect(result).toMatchObject({ ok: true, url: 'https://github.com/acme/shop/issues/13', message: 'opened issue acme/shop#13 (after 2 attempts)' });
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('retries a 500 and then opens the issue in the repository the policy names', async () => {
    const scope = nock(API)
      .get('/repos/acme/payments/issues')
      .query({ state: 'open', per_page: '100', page: '1', since: SINCE })
      .reply(500)
      .get('/repos/acme/payments/issues')
      .query({ state: 'open', per_page: '100', page: '1', since: SINCE })
      .reply(200, [])
      .post('/repos/acme/payments/issues')
      .reply(201, { number: 1, html_url: 'https://github.com/acme/payments/issues/1' });
    const result = await githubSink('\n      repository: acme/payments').open(record);
    expect(scope.isDone()).toBe(true);
    expect(result).toMatchObject({ ok: true, url: 'https://github.com/acme/payments/issues/1' });
  });

  it('says what permission is missing on 403, without retrying or showing the token', async () => {
    openIssues().reply(403, { message: `Resource not accessible by integration (token ${TOKEN})` });
    const result = await githubSink().open(record);
    expect(result.ok).toBe(false);
    expect(result.message).toContain('GitHub answered HTTP 403 for GET /repos/acme/shop/issues');
    expect(result.message).toContain('expected a token with "issues: write" on acme/shop');
    expect(result.message).not.toContain(TOKEN);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('needs a repository and a token before the rollout starts', () => {
    const policy = policyFrom('apiVersion: canary/v1\nkind: RolloutPolicy\nspec:\n  incidents:\n    - type: github-issue\n');
    vi.stubEnv('GITHUB_REPOSITORY', undefined as unknown as string);
    vi.stubEnv('GITHUB_TOKEN', TOKEN);
    expect(() => createIncidentSinks(policy.incidents)).toThrowError(/^spec.incidents\[0\].repository: not set and GITHUB_REPOSITORY is not set/);
    vi.stubEnv('GITHUB_REPOSITORY', 'acme/shop');
    vi.stubEnv('GITHUB_TOKEN', undefined as unknown as string);
    let err: unknown;
    try {
      createIncidentSinks(policy.incidents);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CanaryError);
    expect((err as CanaryError).exitCode).toBe(2);
    expect((err as CanaryError).message).toMatch(/^spec.incidents\[0\].token: environment variable GITHUB_TOKEN is not set/);
  });
});
