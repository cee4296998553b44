// Four projects: fast unit tests of the site's server helpers; server tests that run the built site as its
// own process (body limits, the fuzz suite) against a fake API; browser tests that drive headless Chromium
// against the real stack (started once in global setup); and the first use, `npm start` as a new user runs it
// with the site in a browser. They run one after the other.
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
          name: 'server',
          include: ['test/**/*.server.test.ts'],
          environment: 'node',
          pool: 'forks',
          fileParallelism: false,
          globalSetup: ['test/server-setup.ts'],
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
          hookTimeout: 120_000,
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
          sequence: { groupOrder: 2 },
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          // `npm start` itself, as a new user runs it, with the site and real runtimes (its own stack).
          name: 'first-use',
          include: ['test/**/*.e2e.test.ts'],
          environment: 'node',
          pool: 'forks',
          fileParallelism: false,
          sequence: { groupOrder: 3 },
          testTimeout: 600_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
