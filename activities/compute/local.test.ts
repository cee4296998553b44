/**
 * The local compute provider with a real process (the runtime stand-in in single-instance mode): it starts
 * detached, is adopted by a second create, reports itself gone once its process dies, and destroy removes
 * process and state.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fetchHealth } from '../runtime-client';
import { localRuntime } from '.';
import { LocalComputeProvider } from './local';

const instancesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-compute-'));
const provider = new LocalComputeProvider({ instancesDir, ...localRuntime({ LOCAL_RUNTIME: 'standin' }) });
const token = 'local-provider-test-token-0123456789';
const spec = (instanceId: string) => ({
  instanceId,
  poolName: 'local-test',
  env: { INSTANCE_ID: instanceId, INSTANCE_TOKEN: token },
});

async function until(check: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not met in time');
}

afterAll(async () => {
  await provider.stopAll();
  fs.rmSync(instancesDir, { recursive: true, force: true });
});

describe('local compute provider', () => {
  it('runs a detached runtime, adopts it on a second create, and tells when its process is gone', async () => {
    const id = 'a1b2c3d4-0000-4000-8000-000000000001';
    const handle = await provider.create(spec(id));
    await until(async () => (await fetchHealth(handle.url, token)).ready);
    expect(await provider.isRunning(id)).toBe(true);

    // A retry after a lost response adopts the running process instead of starting a second one.
    const again = await provider.create(spec(id));
    expect(again.url).toBe(handle.url);
    expect(await provider.list('local-test')).toEqual([id]);

    // The process dies (machine restart, OOM kill): the provider says so at once.
    const { pid } = JSON.parse(fs.readFileSync(path.join(instancesDir, id, 'launch.json'), 'utf8'));
    process.kill(-pid, 'SIGKILL');
    await until(async () => (await provider.isRunning(id)) === false);
    expect((await fetchHealth(handle.url, token, 1000)).reachable).toBe(false);

    // Restart brings it back from its state directory.
    const restarted = await provider.restart(spec(id));
    await until(async () => (await fetchHealth(restarted.url, token)).ready);
    expect(await provider.isRunning(id)).toBe(true);

    await provider.destroy(id);
    expect(await provider.isRunning(id)).toBe(null);
    expect(fs.existsSync(path.join(instancesDir, id))).toBe(false);
    expect(await provider.list('local-test')).toEqual([]);
    // Destroying what is gone is success.
    await provider.destroy(id);
  });

  it('cannot tell for an instance it has no launch record of', async () => {
    expect(await provider.isRunning('a1b2c3d4-0000-4000-8000-00000000ffff')).toBe(null);
  });
});
