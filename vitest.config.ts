import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      '{activities,api,workflows,workers,config,contracts,system,tools,catalog,drizzle,scripts,test}/**/*.test.ts',
    ],
    // test/post-run/ reads what this run leaves behind: it runs afterwards (vitest.post-run.config.ts).
    exclude: ['**/node_modules/**', 'runtime/**', 'site/**', 'test/post-run/**'],
    globalSetup: ['test/global-setup.ts'],
    // The Temporal SDK's native bridge and worker threads want real processes.
    pool: 'forks',
    reporters: ['default', 'json'],
    outputFile: { json: 'test-artifacts/vitest-main.json' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: run at most two files at once.
    maxWorkers: 2,
  },
});
