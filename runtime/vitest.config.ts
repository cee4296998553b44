import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'extensions/**/*.test.ts'],
    // Real OpenClaw gateways are separate processes: forks keep each test file isolated, and the
    // timeouts leave room for a gateway boot (~15–45 s on a busy 2-core machine).
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 240_000,
  },
});
