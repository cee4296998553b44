import { defineConfig } from 'vitest/config';

/** Checks over what the main test run left in test-artifacts/: replay of every history, the secret scan. */
export default defineConfig({
  test: {
    include: ['test/post-run/**/*.test.ts'],
    pool: 'forks',
    reporters: ['default', 'json'],
    outputFile: { json: 'test-artifacts/vitest-post-run.json' },
    testTimeout: 600_000,
  },
});
