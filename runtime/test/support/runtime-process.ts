// Runs the real runtime (src/main.ts) as a separate process, the way a compute provider does, and
// makes sure nothing it started outlives the test.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import path from 'node:path';
import { runtimeRoot } from '../../src/paths.ts';
import { descendants, isAlive, processesWithEnv, signalTree } from '../../src/process-tree.ts';

export interface RuntimeProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** SIGTERM, wait for exit; returns the exit code and the pids of its tree still alive after it. */
  stop(timeoutMs?: number): Promise<{ code: number | null; leftovers: number[] }>;
  /** Pids of the gateway process tree right now. */
  tree(): number[];
  gatewayPid(): number | null;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

export function startRuntimeProcess(env: Record<string, string>): RuntimeProcess {
  // Node 24 from the `node` devDependency (vitest itself may run on it or on the system Node).
  const node = process.versions.node.startsWith('24.')
    ? process.execPath
    : `${runtimeRoot}/node_modules/node/bin/node`;
  const child = spawn(node, ['--import', 'tsx', 'src/main.ts'], {
    cwd: runtimeRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const pid = child.pid as number;
  return {
    child,
    url: `http://127.0.0.1:${env.PORT}`,
    output: () => out,
    tree: () => descendants(pid),
    gatewayPid: () => descendants(pid).find((p) => cmdline(p).startsWith('openclaw-gateway')) ?? null,
    async stop(timeoutMs = 30_000) {
      if (child.exitCode !== null) return { code: child.exitCode, leftovers: [] };
      const known = descendants(pid);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs)),
      ]);
      if (code === 'timeout') {
        signalTree(pid, 'SIGKILL', known);
        throw new Error('runtime did not stop in time');
      }
      // Safety net for the test run only; the assertions check that nothing was left before this.
      // Anything of this instance still running: what we saw before, and whatever carries its marker.
      const marked = env.STATE_DIR
        ? processesWithEnv('OPENCLAW_STATE_DIR', path.join(env.STATE_DIR, 'openclaw'))
        : [];
      const leftovers = [...new Set([...known.filter(isAlive), ...marked.filter(isAlive)])];
      signalTree(pid, 'SIGKILL', leftovers);
      return { code, leftovers };
    },
  };
}

export async function waitForHealth(
  url: string,
  token: string,
  predicate: (body: Record<string, unknown>) => boolean,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/pool/health`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(2_000),
      });
      if (res.ok) {
        const body = (await res.json()) as Record<string, unknown>;
        last = body;
        if (predicate(body)) return body;
      }
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`health condition not met in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}
