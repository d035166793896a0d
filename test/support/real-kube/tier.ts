import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CliRun } from '../run-cli.js';
import { realKubeUnavailable, startRealKube, type RealKube } from './cluster.js';
import { startScriptedPrometheus, startWorld, type ScriptedPrometheus, type World } from './world.js';

// The frame of a test file of the real API server tier: one kube-apiserver for the file (started
// by up.sh, stopped by down.sh), one scripted Prometheus, and a fresh world (namespace, seeded
// objects, Deployment controller, watched history) for each test. Where the API server cannot run
// here, the file reports one skipped test whose name says why, so the gap shows in the output;
// under CI (CI=true) it fails instead.

export interface Tier {
  readonly cluster: RealKube;
  readonly prom: ScriptedPrometheus;
  /** The current test's world. */
  readonly world: World;
}

export function realKubeDescribe(title: string, body: (tier: Tier) => void): void {
  const why = realKubeUnavailable();
  if (why && process.env['CI'] === 'true') {
    // Under CI a missing prerequisite is a failure: the suite must not pass by skipping a tier.
    describe(title, () => {
      it('the real kube-apiserver tier has its prerequisites (CI=true: a missing one fails)', () => {
        throw new Error(`the real kube-apiserver tier cannot run here: ${why}`);
      });
    });
    return;
  }
  if (why) {
    describe(title, () => {
      it.skip(`SKIPPED, the real kube-apiserver tier cannot run here: ${why}`, () => undefined);
    });
    console.warn(`[e2e-kube] ${title}: skipped: ${why}`);
    return;
  }
  let cluster: RealKube | undefined;
  let prom: ScriptedPrometheus | undefined;
  let world: World | undefined;
  const tier: Tier = {
    get cluster() {
      if (!cluster) throw new Error('the real API server did not start');
      return cluster;
    },
    get prom() {
      if (!prom) throw new Error('the scripted Prometheus did not start');
      return prom;
    },
    get world() {
      if (!world) throw new Error('no world: beforeEach did not run');
      return world;
    },
  };
  describe(title, () => {
    beforeAll(async () => {
      [cluster, prom] = await Promise.all([startRealKube(), startScriptedPrometheus()]);
    }, 240_000);
    afterAll(async () => {
      await prom?.close();
      await cluster?.stop();
    }, 60_000);
    beforeEach(async () => {
      world = await startWorld(tier.cluster, tier.prom);
    }, 60_000);
    afterEach(async () => {
      await world?.dispose();
      world = undefined;
    }, 60_000);
    body(tier);
  });
}

/** Asserts a CLI exit code, with the command's output in the failure message. */
export function expectExit(run: CliRun, code: number): void {
  expect(run.code, `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`).toBe(code);
}
