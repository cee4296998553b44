// Setup of the server tests (`*.server.test.ts`): build the site once; each test file starts its own site
// server process from dist/ (test/site-server.ts) against a fake API or none.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const siteDir = resolve(import.meta.dirname, '..');

export default function setup() {
  if (process.env.SITE_TEST_SKIP_BUILD === '1') return;
  const build = spawnSync(process.execPath, [resolve(siteDir, 'node_modules/astro/bin/astro.mjs'), 'build'], {
    cwd: siteDir,
    env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (build.status !== 0) throw new Error('astro build failed');
}
