/** `npm start`'s cached workflow bundle: built once for the current sources, then read from the cache. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { cachedWorkflowBundle } from './workflow-bundle';

it('bundles the workflows (phase modules and contracts included) once, then serves the cached file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bundle-cache-'));
  try {
    const first = await cachedWorkflowBundle(dir);
    expect(first.code).toContain('instanceWorkflow');
    const files = fs.readdirSync(dir);
    expect(files).toHaveLength(1);
    const cached = path.join(dir, files[0]!);
    const written = fs.statSync(cached).mtimeMs;
    const second = await cachedWorkflowBundle(dir);
    expect(second.code).toBe(first.code);
    expect(fs.statSync(cached).mtimeMs).toBe(written);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
