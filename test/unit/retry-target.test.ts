import { describe, expect, it } from 'vitest';
import { retryTarget } from '../../src/cli/live-deploy.js';
import type { RolloutRecord } from '../../src/rollout/record.js';

const record = (phase: RolloutRecord['phase'], image = 'shop/checkout:2'): RolloutRecord =>
  ({ id: 'checkout-1', phase, images: { stable: 'shop/checkout:1', canary: image } }) as RolloutRecord;

describe('deploy --retry: which last rollout may be started again', () => {
  it('takes a rolled-back or aborted rollout of the same image', () => {
    expect(retryTarget(record('rolled-back'), 'checkout', 'shop', 'shop/checkout:2')).toBe('checkout-1');
    expect(retryTarget(record('aborted'), 'checkout', 'shop', 'shop/checkout:2')).toBe('checkout-1');
  });

  it('refuses (exit 2) another image, a rollout in progress, a finished one, or none', () => {
    const refusal = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return { message: (err as Error).message, exit: (err as { exitCode?: number }).exitCode };
      }
      throw new Error('expected a refusal');
    };
    expect(refusal(() => retryTarget(record('rolled-back', 'shop/checkout:3'), 'checkout', 'shop', 'shop/checkout:2'))).toEqual({
      message: '--retry: the last rollout of checkout (checkout-1) was of image shop/checkout:3, not shop/checkout:2; --retry starts the same image again (deploy shop/checkout:2 without --retry)',
      exit: 2,
    });
    expect(refusal(() => retryTarget(record('progressing'), 'checkout', 'shop', 'shop/checkout:2')).message).toContain('it is still progressing (continue it with --resume, or stop it with `canary rollback`)');
    expect(refusal(() => retryTarget(record('promoted'), 'checkout', 'shop', 'shop/checkout:2')).message).toContain('it ended promoted');
    expect(refusal(() => retryTarget(record('failed'), 'checkout', 'shop', 'shop/checkout:2')).message).toContain('it ended failed');
    expect(refusal(() => retryTarget(undefined, 'checkout', 'shop', 'shop/checkout:2')).exit).toBe(2);
  });
});
