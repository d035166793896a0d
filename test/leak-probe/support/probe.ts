import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../support/run-cli.js';

// Distinctive secrets, one per place a secret can be given, each with a "/" (so JSON writers may
// escape it as "\/") and characters that change under percent-encoding. Every form a secret takes
// on the wire or in a log is searched for in every output.

export const SECRETS = {
  promBearer: 'PROBEbearer/Tok+en=0001',
  promBasicUser: 'probe-basic-user',
  promBasicPass: 'PROBEbasic/Pass+0002',
  promHeader: 'PROBEheader/ApiKey+0003',
  promHeaderEnv: 'PROBEheaderEnv/Key+0004',
  promUrlUser: 'probe-url-user',
  promUrlPass: 'PROBEurl/Pass+0005',
  promQueryToken: 'PROBEquery/Tok+0006',
  proxyUser: 'probe-proxy-user',
  proxyPass: 'PROBEproxy/Pass+0007',
  kubeToken: 'PROBEkube/Token+0008',
  webhookHeader: 'PROBEwebhook/Hdr+0009',
  webhookAuth: 'PROBEwebhook/Auth+0010',
  webhookQuery: 'PROBEwebhookQuery0011',
  webhookHmac: 'PROBEhmac/Secret+0012',
  slackPath: 'PROBEslackPath0013xyz',
  pagerdutyKey: 'PROBEpagerduty/Key+0014',
  githubToken: 'PROBEgithub/Token+0015',
} as const;

export type SecretName = keyof typeof SECRETS;

/** user:password pairs whose base64 (Basic / Proxy-Authorization) must not appear either. */
const PAIRS: [SecretName, SecretName][] = [
  ['promBasicUser', 'promBasicPass'],
  ['promUrlUser', 'promUrlPass'],
  ['proxyUser', 'proxyPass'],
];

/** User names are not secrets; every other entry is. */
const NOT_SECRET = new Set<SecretName>(['promBasicUser', 'promUrlUser', 'proxyUser']);

/** Every printable form of a secret: raw, percent-encoded (both ways), JSON-escaped, JSON with "\/". */
export function formsOf(secret: string): string[] {
  const json = JSON.stringify(secret).slice(1, -1);
  return [...new Set([secret, encodeURIComponent(secret), new URLSearchParams({ x: secret }).toString().slice(2), json, json.replace(/\//g, '\\/')])];
}

export interface Leak {
  where: string;
  secret: string;
  form: string;
  context: string;
}

/** Finds every form of every secret (or of the named ones) in each text. */
export function findLeaks(texts: Record<string, string>, only?: readonly SecretName[]): Leak[] {
  const names = (only ?? (Object.keys(SECRETS) as SecretName[])).filter((n) => !NOT_SECRET.has(n));
  const needles: { secret: string; form: string }[] = [];
  for (const name of names) for (const form of formsOf(SECRETS[name])) needles.push({ secret: name, form });
  for (const [user, pass] of PAIRS) {
    if (only && !only.includes(pass)) continue;
    needles.push({ secret: `${user}:${pass} (base64)`, form: Buffer.from(`${SECRETS[user]}:${SECRETS[pass]}`).toString('base64') });
  }
  const leaks: Leak[] = [];
  for (const [where, text] of Object.entries(texts)) {
    for (const { secret, form } of needles) {
      const at = text.indexOf(form);
      if (at >= 0) leaks.push({ where, secret, form, context: text.slice(Math.max(0, at - 80), at + form.length + 40) });
    }
  }
  return leaks;
}

/** A readable failure: where each leak was found and the text around it. */
export function describeLeaks(leaks: readonly Leak[]): string {
  return leaks.map((l) => `${l.secret} in ${l.where}: …${l.context}…`).join('\n');
}

export const probeDir = mkdtempSync(join(tmpdir(), 'canary-leak-probe-'));

export interface ProbeRun {
  args: string[];
  code: number | null;
  /** Everything the run wrote that a reader could see: stdout, stderr, summary, outputs, and named files. */
  outputs: { stdout: string; stderr: string; summary: string; outputs: string } & Record<string, string>;
}

let counter = 0;

/**
 * Runs bin/canary as a GitHub Actions step would (GITHUB_STEP_SUMMARY and GITHUB_OUTPUT files),
 * and collects every output, plus the files named in `files` (recordings).
 */
export function runProbe(args: string[], env: NodeJS.ProcessEnv, files: string[] = []): Promise<ProbeRun> {
  const n = ++counter;
  const summary = join(probeDir, `summary-${n}.md`);
  const output = join(probeDir, `output-${n}.txt`);
  writeFileSync(summary, '');
  writeFileSync(output, '');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/canary', ...args], {
      // CANARY_PROBE_REPO runs the probes against another build (e.g. an older release's bundle).
      cwd: process.env['CANARY_PROBE_REPO'] ?? REPO,
      env: {
        ...process.env,
        NO_COLOR: '1',
        FORCE_COLOR: undefined,
        HTTP_PROXY: undefined,
        HTTPS_PROXY: undefined,
        http_proxy: undefined,
        https_proxy: undefined,
        NO_PROXY: undefined,
        no_proxy: undefined,
        GITHUB_ACTIONS: 'true',
        GITHUB_STEP_SUMMARY: summary,
        GITHUB_OUTPUT: output,
        GITHUB_REPOSITORY: 'acme/shop',
        GITHUB_RUN_ID: '4242',
        GITHUB_SERVER_URL: 'https://github.com',
        HOME: probeDir,
        KUBECONFIG: join(probeDir, 'no-kubeconfig'),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => {
      const outputs: ProbeRun['outputs'] = { stdout, stderr, summary: readFileSync(summary, 'utf8'), outputs: readFileSync(output, 'utf8') };
      for (const f of files) if (existsSync(f)) outputs[`file ${f}`] = readFileSync(f, 'utf8');
      resolve({ args, code, outputs });
    });
  });
}

/** Runs the probes two at a time (the CI machine has two cores shared with other suites). */
export async function runAll(probes: readonly (() => Promise<ProbeRun>)[], concurrency = 2): Promise<ProbeRun[]> {
  const results: ProbeRun[] = new Array(probes.length);
  let next = 0;
  const worker = async () => {
    while (next < probes.length) {
      const i = next++;
      results[i] = await probes[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, probes.length) }, worker));
  return results;
}

/** All leaks of a batch of runs, each labelled with its command line. */
export function leaksOf(runs: readonly ProbeRun[], only?: readonly SecretName[]): Leak[] {
  return runs.flatMap((run) =>
    findLeaks(Object.fromEntries(Object.entries(run.outputs).map(([k, v]) => [`${run.args.slice(0, 2).join(' ')} … ${run.args.slice(-4).join(' ')} → ${k}`, v])), only),
  );
}

export function writeProbeFile(name: string, text: string): string {
  const path = join(probeDir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}
