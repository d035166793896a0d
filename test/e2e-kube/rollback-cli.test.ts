import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { expectExit, realKubeDescribe } from '../support/real-kube/tier.js';
import { CANARY, rollbackArgs, TARGET } from '../support/real-kube/world.js';

// `canary rollback` through the CLI on the real API server: the paths its other tests do not
// take (issue 16, Tests): nothing to roll back, -o json, --timeout ending in exit 5, and a
// rollback that delivers its incident.

realKubeDescribe('canary rollback through the CLI on a real API server', (tier) => {
  it('with nothing to roll back (no canary Ingress, no record): says so, writes nothing, exits 0', async () => {
    const { world } = tier;
    const run = await world.run(rollbackArgs(world));
    expectExit(run, 0);
    expect(run.stdout).toContain(`no canary Ingress of ours and no rollout record exist for ${TARGET} in namespace ${world.namespace}: nothing to roll back`);
    expect(await world.record()).toBeUndefined();
    expect(await world.weight()).toBeUndefined();
  });

  it('-o json: one JSON document with the result, the weights read back and the record', async () => {
    const { world } = tier;
    const deploy = await world.deployHeldAt(25);
    const run = await world.run(rollbackArgs(world, '-o', 'json'));
    expectExit(run, 0);
    const report = JSON.parse(run.stdout) as { result: string; exitCode: number; ingresses: { name: string; weight: number }[]; record: { phase: string } | null; stable: { available: boolean } | null };
    expect(report).toMatchObject({ result: 'aborted', exitCode: 0, ingresses: [{ name: CANARY, weight: 0 }], record: { phase: 'aborted' }, stable: { available: true } });
    expectExit(await deploy.done, 4);
  });

  it('--timeout: an API server that never answers the weight-0 PATCH ends in exit 5, saying traffic is not confirmed, having changed nothing', async () => {
    const { world } = tier;
    const deploy = await world.deployHeldAt(25);
    const { proxy, kubeconfig } = await world.proxy();
    // The call that matters is held, never answered: the rollback's PATCH of the canary Ingress.
    const gate = proxy.hold({ method: 'PATCH', path: `/ingresses/${CANARY}`, times: Number.POSITIVE_INFINITY });
    const rollback = world.start(rollbackArgs(world, '--timeout', '2s'), { env: { KUBECONFIG: kubeconfig } });
    await world.until("the rollback's weight-0 PATCH to be held by the proxy", async () => gate.held.length > 0);
    const run = await rollback.done;
    expectExit(run, 5);
    expect(run.stderr).toContain('canary weight NOT confirmed at 0%');
    expect(gate.held.every((call) => call.body.includes('"0"'))).toBe(true);
    // Nothing got through: the deploy still holds its step, and the record is untouched.
    expect(proxy.calls.filter((c) => c.method !== 'GET' && c.status !== 0)).toEqual([]);
    expect(await world.weight()).toBe(25);
    expect((await world.record())?.phase).toBe('progressing');
    deploy.child.kill('SIGTERM');
    await deploy.done;
  });

  it('delivers its incident: the webhook gets the rollback with its reason, after traffic is at 0%', async () => {
    const { world } = tier;
    const received: { body: string; weight: number | undefined }[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void world.weight().then((weight) => {
          received.push({ body: Buffer.concat(chunks).toString('utf8'), weight });
          res.writeHead(200).end('{}');
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const policy = await world.writePolicy('incident', { incidents: [`    - { type: webhook, url: "http://127.0.0.1:${port}/hook" }`] });
      const deploy = await world.deployHeldAt(25, { policy });
      const run = await world.run(rollbackArgs(world), { policy });
      expectExit(run, 0);
      expect(run.stdout).toContain('incident opened in webhook');
      expect(received).toHaveLength(1);
      expect(received[0]?.weight).toBe(0);
      expect(received[0]?.body).toContain('pager');
      expectExit(await deploy.done, 4);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
