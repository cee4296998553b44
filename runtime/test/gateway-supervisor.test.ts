// Supervision mechanics with a stand-in gateway process (the real gateway is covered end to end in
// runtime.e2e.test.ts): readiness probing, restart after a crash, "down" after repeated fast crashes,
// and stop() killing helpers that live in their own process group.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewaySupervisor } from '../src/gateway-supervisor.ts';
import { isAlive } from '../src/process-tree.ts';

const fake = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'fake-gateway.mjs');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function supervisor(
  mode: 'crash' | 'serve',
  extraEnv: Record<string, string> = {},
  warmUp?: () => Promise<void>,
  keepWarm?: { everyMs: number; while: () => boolean; turn: () => Promise<void> },
) {
  const dir = mkdtempSync(path.join(tmpdir(), 'supervisor-'));
  const port = await freePort();
  const pidFile = path.join(dir, 'pids.json');
  const lines: string[] = [];
  const sup = new GatewaySupervisor({
    command: process.execPath,
    args: [fake, mode],
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      PIDFILE: pidFile,
      FAKE_GATEWAY_DIR: dir,
      ...extraEnv,
    },
    cwd: dir,
    port,
    logDir: path.join(dir, 'logs'),
    marker: { name: 'FAKE_GATEWAY_DIR', value: dir },
    redact: [],
    fastCrashMs: 5_000,
    maxFastCrashes: 3,
    backoffBaseMs: 20,
    backoffMaxMs: 100,
    probeIntervalMs: 50,
    ...(warmUp ? { warmUp } : {}),
    ...(keepWarm ? { keepWarm } : {}),
    log: (l) => lines.push(l),
  });
  cleanups.push(async () => {
    await sup.stop(500);
    rmSync(dir, { recursive: true, force: true });
  });
  const pids = () => JSON.parse(readFileSync(pidFile, 'utf8')) as { gateway: number; helper: number };
  return { sup, lines, pids, dir };
}

describe('GatewaySupervisor', () => {
  it('reports down after repeated fast crashes, with growing backoff', async () => {
    const { sup, lines } = await supervisor('crash');
    await sup.start();
    expect(sup.state).toBe('starting');
    await waitFor(() => sup.state === 'down', 5_000);
    expect(sup.starts).toBeGreaterThanOrEqual(3);
    const delays = lines
      .map((l) => /restart in (\d+) ms/.exec(l)?.[1])
      .filter(Boolean)
      .map(Number);
    expect(delays.slice(0, 3)).toEqual([20, 40, 80]);
  });

  it('becomes ready, restarts a killed gateway, and reaps its helper', async () => {
    const { sup, pids } = await supervisor('serve');
    await sup.start();
    await waitFor(() => sup.state === 'ready', 10_000);
    const first = pids();
    process.kill(first.gateway, 'SIGKILL');
    await waitFor(() => sup.state !== 'ready', 5_000);
    await waitFor(() => sup.state === 'ready' && pids().gateway !== first.gateway, 10_000);
    expect(sup.starts).toBe(2);
    // The first gateway's helper (own process group) must not survive its gateway.
    await waitFor(() => !isAlive(first.helper), 3_000);
  });

  it('stays starting until the warm-up is done, warms every new gateway once, and is ready even when warming fails', async () => {
    let release: () => void = () => {};
    let calls = 0;
    const { sup, pids, lines } = await supervisor('serve', {}, async () => {
      calls += 1;
      if (calls === 1) await new Promise<void>((r) => (release = r));
      else throw new Error('no warm-up today');
    });
    await sup.start();
    await waitFor(() => calls === 1, 10_000);
    await new Promise((r) => setTimeout(r, 300)); // several probe intervals: answering, still not ready
    expect(sup.state).toBe('starting');
    release();
    await waitFor(() => sup.state === 'ready', 5_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(calls).toBe(1); // once per gateway process, not per probe
    const first = pids();
    process.kill(first.gateway, 'SIGKILL');
    await waitFor(() => sup.state !== 'ready', 5_000);
    await waitFor(() => sup.state === 'ready' && pids().gateway !== first.gateway, 10_000);
    expect(calls).toBe(2);
    expect(lines.some((l) => l.includes('gateway warm-up failed') && l.includes('no warm-up today'))).toBe(
      true,
    );
  });

  it('runs the warm-up again every keep-warm interval while the instance is unclaimed, and never after', async () => {
    let warmUps = 0;
    let calls = 0;
    let claimed = false;
    const { sup } = await supervisor(
      'serve',
      {},
      async () => {
        warmUps += 1;
      },
      {
        everyMs: 100,
        while: () => !claimed,
        turn: async () => {
          calls += 1;
        },
      },
    );
    await sup.start();
    await waitFor(() => sup.state === 'ready', 10_000);
    await waitFor(() => sup.keepWarmTurns >= 3, 5_000);
    expect(warmUps).toBe(1); // the boot's warm-up once, then the keep-warm turn every interval
    expect(calls).toBe(sup.keepWarmTurns);
    claimed = true;
    const after = calls;
    await new Promise((r) => setTimeout(r, 400));
    expect(calls - after).toBeLessThanOrEqual(1); // at most the turn already due when the claim came
    const settled = calls;
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(settled);
  });

  it('tolerates one missed probe but reports a wedged (alive, unready) gateway as not ready', async () => {
    const flagDir = mkdtempSync(path.join(tmpdir(), 'unready-'));
    cleanups.push(() => rmSync(flagDir, { recursive: true, force: true }));
    const unready = path.join(flagDir, 'flag');
    const { sup } = await supervisor('serve', { UNREADY_FILE: unready });
    await sup.start();
    await waitFor(() => sup.state === 'ready', 10_000);
    writeFileSync(unready, '1');
    // Probes run every 50 ms here: the first miss keeps "ready", the third flips it.
    await new Promise((r) => setTimeout(r, 60));
    expect(sup.state).toBe('ready');
    await waitFor(() => sup.state === 'starting', 5_000);
    expect(sup.starts).toBe(1);
    rmSync(unready);
    await waitFor(() => sup.state === 'ready', 5_000);
  });

  it('kills a stray gateway left by a previous run (found by its marker) before starting', async () => {
    const { sup, dir, lines } = await supervisor('serve');
    const stray = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      detached: true,
      stdio: 'ignore',
      env: { PATH: process.env.PATH ?? '', FAKE_GATEWAY_DIR: dir },
    });
    stray.unref();
    await waitFor(() => isAlive(stray.pid as number), 2_000);
    await sup.start();
    expect(isAlive(stray.pid as number)).toBe(false);
    expect(lines.join('\n')).toMatch(/killing 1 stray gateway process/);
    await waitFor(() => sup.state === 'ready', 10_000);
  });

  it('stop() kills the gateway and its helpers, escalating to SIGKILL', async () => {
    const { sup, pids } = await supervisor('serve', { IGNORE_TERM: '1' });
    await sup.start();
    await waitFor(() => sup.state === 'ready', 10_000);
    const { gateway, helper } = pids();
    await sup.stop(300);
    expect(isAlive(gateway)).toBe(false);
    expect(isAlive(helper)).toBe(false);
    expect(sup.state).toBe('starting');
  });
});
