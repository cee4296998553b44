// Two projects: fast unit tests of the site's server helpers, and browser tests that drive
// headless Chromium against the real stack (started once in global setup).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // A JSON summary next to the core's (test-artifacts/vitest-*.json), which .ci/run adds up.
    reporters: ['default', 'json'],
    outputFile: { json: '../test-artifacts/vitest-site.json' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'browser',
          include: ['test/**/*.browser.test.ts'],
          environment: 'node',
          pool: 'forks',
          fileParallelism: false,
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
