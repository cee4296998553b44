/**
 * The local compute provider with a real process (the runtime stand-in in single-instance mode): it starts
 * detached, is adopted by a second create, reports itself gone once its process dies, and destroy removes
 * process and state. A pid in launch.json that now belongs to another process (after a reboot, a pid
 * reuse) is never signalled, adopted or reported running: the record's process identity must match.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fetchHealth } from '../runtime-client';
import { localRuntime } from '.';
import { LocalComputeProvider, type ProcessIdentity, processIdentity } from './local';

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

const launchFile = (id: string) => path.join(instancesDir, id, 'launch.json');
const readLaunch = (id: string) =>
  JSON.parse(fs.readFileSync(launchFile(id), 'utf8')) as {
    port: number;
    pid: number;
    identity?: ProcessIdentity | null;
  };
const writeLaunch = (id: string, record: object) => {
  fs.mkdirSync(path.join(instancesDir, id, 'state'), { recursive: true });
  fs.writeFileSync(launchFile(id), JSON.stringify(record));
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const bystanders: ChildProcess[] = [];
/** An unrelated process, in its own process group like a runtime (so a group kill would reach it). */
async function bystander(): Promise<ChildProcess & { pid: number }> {
  const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  bystanders.push(child);
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return child as ChildProcess & { pid: number };
}
/** It was not signalled: still running, no exit, no signal. */
async function untouched(child: ChildProcess & { pid: number }) {
  await new Promise((r) => setTimeout(r, 300)); // time for a signal to land
  expect(child.exitCode).toBe(null);
  expect(child.signalCode).toBe(null);
  expect(alive(child.pid)).toBe(true);
}

afterAll(async () => {
  await provider.stopAll();
  for (const child of bystanders) child.kill('SIGKILL');
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

describe.skipIf(process.platform !== 'linux')('local compute provider: process identity (Linux)', () => {
  it('records the start time (stat field 22) and boot id of what it launched', async () => {
    const id = 'a1b2c3d4-0000-4000-8000-000000000010';
    const handle = await provider.create(spec(id));
    const { pid, identity } = readLaunch(id);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    expect(identity).toEqual({
      kind: 'linux',
      bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      startTicks: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
    });
    expect(processIdentity(pid)).toEqual(identity);
    await until(async () => (await fetchHealth(handle.url, token)).ready);

    // The genuine process is stopped by stopAll (the whole group), then counts as not running.
    await provider.stopAll();
    await until(async () => !alive(pid));
    expect(await provider.isRunning(id)).toBe(false);
    await provider.destroy(id);
  });

  it('never signals, adopts or reports running an unrelated process under the recorded pid', async () => {
    const other = await bystander();
    const real = processIdentity(other.pid);
    if (real?.kind !== 'linux')
      throw new Error(`no Linux identity for the bystander: ${JSON.stringify(real)}`);
    const records: Record<string, object> = {
      'before a reboot (other boot id)': {
        identity: { ...real, bootId: '00000000-0000-4000-8000-000000000000' },
      },
      'a reused pid (other start time)': {
        identity: { ...real, startTicks: String(Number(real.startTicks) - 1) },
      },
      'a record from before identities (its environment names no state dir of ours)': {},
      'an identity that could not be read at launch': { identity: null },
    };
    const id = 'a1b2c3d4-0000-4000-8000-000000000011';
    for (const [what, extra] of Object.entries(records)) {
      const record = { port: 0, pid: other.pid, ...extra };
      writeLaunch(id, record);
      expect(await provider.isRunning(id), what).toBe(false);
      await provider.stopAll();
      await untouched(other);
      await provider.destroy(id);
      await untouched(other);
      expect(fs.existsSync(path.join(instancesDir, id)), what).toBe(false);
    }

    // restart and create do not stop or adopt it either: they launch a runtime of their own.
    writeLaunch(id, {
      port: 0,
      pid: other.pid,
      identity: { ...real, bootId: '00000000-0000-4000-8000-000000000000' },
    });
    const restarted = await provider.restart(spec(id));
    await untouched(other);
    expect(readLaunch(id).pid).not.toBe(other.pid);
    await until(async () => (await fetchHealth(restarted.url, token)).ready);
    expect(await provider.isRunning(id)).toBe(true);
    await provider.destroy(id);

    writeLaunch(id, { port: 0, pid: other.pid });
    const created = await provider.create(spec(id));
    await untouched(other);
    const launched = readLaunch(id).pid;
    expect(launched).not.toBe(other.pid);
    await until(async () => (await fetchHealth(created.url, token)).ready);
    await provider.destroy(id);
    await until(async () => !alive(launched));
    await untouched(other);
  });

  it('a runtime launched before identities were recorded is still recognised (by its state dir) and stopped', async () => {
    const id = 'a1b2c3d4-0000-4000-8000-000000000012';
    const handle = await provider.create(spec(id));
    await until(async () => (await fetchHealth(handle.url, token)).ready);
    const { port, pid } = readLaunch(id);
    writeLaunch(id, { port, pid }); // the old record format: no identity
    expect(await provider.isRunning(id)).toBe(true);
    expect((await provider.create(spec(id))).url).toBe(handle.url); // adopted, not launched twice
    await provider.destroy(id);
    await until(async () => !alive(pid));
  });
});
