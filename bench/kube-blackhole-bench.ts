import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NetworkingV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { messageOf } from '../src/errors.js';
import { kubeRetryOf, withKubeRetry } from '../src/k8s/api-errors.js';
import { connect } from '../src/k8s/connection.js';
import { loadPolicy } from '../src/policy/loader.js';

// How long one Kubernetes API call takes to give up against a black-holed API server (accepts
// TCP connections, never answers), with the shipped default policy's spec.kubernetes settings.
// Before the one retry module this was about 2.6 min (5 attempts × 30 s timeout + backoff).

async function main(): Promise<void> {
  const sockets: Socket[] = [];
  let connections = 0;
  const server = createServer((socket) => {
    connections += 1;
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'canary-bench-blackhole-'));
  try {
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'blackhole',
        clusters: [{ name: 'blackhole', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 'bench' } }],
        contexts: [{ name: 'blackhole', context: { cluster: 'blackhole', user: 'u', namespace: 'shop' } }],
      }),
    );
    const policy = loadPolicy();
    const k = policy.kubernetes;
    const api = connect({ kubeconfig, env: {} }).kc.makeApiClient(NetworkingV1Api);
    console.log(`canary black-holed Kubernetes API benchmark (node ${process.version})`);
    console.log(`default policy: spec.kubernetes attempts ${k.attempts}, timeout ${k.timeoutMs / 1000} s, deadline ${k.deadlineMs / 1000} s`);
    const t0 = performance.now();
    let outcome = 'answered (unexpected)';
    try {
      await withKubeRetry('reading Ingress shop/checkout', (o) => api.readNamespacedIngress({ name: 'checkout', namespace: 'shop' }, o), {
        ...kubeRetryOf(k),
        server: url,
      });
    } catch (err) {
      outcome = messageOf(err);
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log('');
    console.log(`one API call gave up after ${seconds.toFixed(2)} s, ${connections} connection${connections === 1 ? '' : 's'} accepted`);
    console.log(`  ${outcome}`);
    console.log('');
    console.log('Aim (issue 8 item 6): within the call deadline (30 s by default), not ~2.6 min.');
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
