import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Bounds on waiting, not expectations: a loaded 2-core machine starts each child CLI in seconds,
    // and an end-to-end test runs several. Tests gate on observed state, never on these.
    testTimeout: 180_000,
    hookTimeout: 240_000,
    // Real Prometheus and child CLIs are heavy on a 2-core machine; keep parallelism modest.
    maxWorkers: 2,
  },
});
