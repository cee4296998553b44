// Starts and stops a built site server (dist/) for the browser tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

const siteDir = resolve(import.meta.dirname, '..');

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? ok(addr.port) : fail(new Error('no port'))));
    });
  });
}

async function waitHttp(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

export const stopProc = (proc: ChildProcess | undefined, ms = 60_000) =>
  new Promise<void>((ok) => {
    if (!proc || proc.exitCode !== null) return ok();
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      ok();
    }, ms);
    proc.once('exit', () => {
      clearTimeout(t);
      ok();
    });
    proc.kill('SIGTERM');
  });

/** Serves the built site against `apiUrl`; `env` overrides the test defaults. */
export async function startSite(
  apiUrl: string,
  apiKey: string,
  env: Record<string, string> = {},
): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [resolve(siteDir, 'dist/server/entry.mjs')], {
    cwd: siteDir,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      POOL_API_URL: apiUrl,
      POOL_API_KEY: apiKey,
      // Short waits so the empty-pool state shows quickly; generous per-IP limit (every test is one IP).
      SITE_CLAIM_MAX_WAIT_MS: '3000',
      SITE_CLAIM_RATE_LIMIT: '200',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${url}/safety`, 30_000);
  } catch (err) {
    await stopProc(proc, 5_000);
    throw err;
  }
  return { proc, url };
}
