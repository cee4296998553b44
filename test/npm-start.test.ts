/**
 * `npm start` as a developer runs it: one command brings up its own Temporal dev server (state under DATA_DIR),
 * the database, the worker, the API and a warm pool; a claim works; the banner never prints the API key; with
 * payload encryption the dev server's Web UI is wired to the API's codec endpoint; Ctrl-C stops everything and
 * exits 0; the next start resumes what the first left (the claimed instance is still claimed).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, inject, it } from 'vitest';
// @ts-expect-error: plain JavaScript (it runs before anything is installed), no declarations
import { installIsStale } from '../scripts/install-state.mjs';
import { projectRoot } from '../scripts/temporal-dev';
import { freePort } from './support/ports';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convos-npm-start-'));
let output = '';
let child: ChildProcess | null = null;

/** `npm start` reinstalls stale dependencies first; mid-run that would pull node_modules from under the suite. */
function assertInstalled(dir: string) {
  if (installIsStale(dir))
    throw new Error(`dependencies in ${dir} are stale: run npm ci there before npm test`);
}

function start(env: Record<string, string>): ChildProcess {
  const proc = spawn('npm', ['start', '-s'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const s of [proc.stdout, proc.stderr]) s?.on('data', (d: Buffer) => (output += d.toString()));
  child = proc;
  return proc;
}

/**
 * Ctrl-C: the terminal sends SIGINT to the whole foreground process group. npm itself dies of the signal; the
 * stack's own process shuts down in order and exits 0 ("stopped" is its last line).
 */
async function stop(proc: ChildProcess): Promise<string> {
  const exited = new Promise<string>((r) => proc.once('exit', (code, signal) => r(`${code ?? signal}`)));
  process.kill(-proc.pid!, 'SIGINT');
  return exited;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${output.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

afterAll(async () => {
  if (child && child.exitCode === null) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {}
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

it('starts the whole stack, serves a claim, stops on Ctrl-C and resumes on the next start', async () => {
  for (const dir of [projectRoot, path.join(projectRoot, 'site'), path.join(projectRoot, 'runtime')])
    assertInstalled(dir);
  const [port, uiPort, apiPort, metricsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const env = {
    DATA_DIR: dataDir,
    TEMPORAL_DEV_PORT: String(port),
    TEMPORAL_DEV_UI_PORT: String(uiPort),
    API_PORT: String(apiPort),
    WORKER_METRICS_PORT: String(metricsPort),
    SITE: 'off',
    // The process wiring is what this test is about; the real runtime has its own tests (real-runtime).
    LOCAL_RUNTIME: 'standin',
    POOL_TARGET_IDLE: '1',
    PAYLOAD_ENCRYPTION_KEY: inject('payloadEncryptionKey'),
  };
  const api = `http://127.0.0.1:${apiPort}`;
  const first = start(env);
  await waitFor('the banner', async () => output.includes('convos-agents is running'), 240_000);
  const apiKey = fs.readFileSync(path.join(dataDir, 'pool-api-key'), 'utf8').trim();
  expect(output).not.toContain(apiKey);
  // Its own dev server keeps its state under DATA_DIR.
  expect(fs.existsSync(path.join(dataDir, 'temporal.db'))).toBe(true);
  // The Web UI decodes payloads through the API's codec endpoint.
  const uiSettings = (await (await fetch(`http://127.0.0.1:${uiPort}/api/v1/settings`)).json()) as {
    Codec?: { Endpoint?: string };
  };
  expect(uiSettings.Codec?.Endpoint).toBe(`${api}/api/codec`);
  // Metrics: the API's own and the Temporal SDK's (its worker runs in this process).
  expect(await (await fetch(`${api}/metrics`)).text()).toContain('convos_claim_duration_seconds');
  await waitFor(
    "the Temporal SDK's metrics",
    async () => (await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).includes('temporal_'),
    30_000,
  );

  await waitFor(
    'an idle instance',
    async () => ((await (await fetch(`${api}/api/pool/counts`)).json()) as { idle: number }).idle >= 1,
    120_000,
  );
  const claimStarted = Date.now();
  const claim = await fetch(`${api}/api/pool/claim`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
      'idempotency-key': `npm-start-${path.basename(dataDir)}`,
    },
    body: JSON.stringify({ agentName: 'Started' }),
  });
  expect(claim.status).toBe(200);
  const { instanceId } = (await claim.json()) as { instanceId: string };
  // On the default embedded database too the claim goes straight through: a ledger that misread PGlite's
  // answer took its own fresh row for someone else's and waited out the 15 s lease before going on.
  expect(Date.now() - claimStarted).toBeLessThan(10_000);

  expect(['0', 'SIGINT']).toContain(await stop(first));
  // npm dies of the signal at once; the stack's own process finishes its shutdown after it.
  await waitFor('the stack to stop', async () => /stopping…[\s\S]*\] stopped/.test(output), 60_000);
  // Everything is down: the API and the dev server no longer answer.
  await expect(fetch(`${api}/api/pool/counts`)).rejects.toThrow();
  await expect(fetch(`http://127.0.0.1:${uiPort}/api/v1/settings`)).rejects.toThrow();

  // The next start resumes: the same instance, still claimed by the same agent.
  output = '';
  const second = start(env);
  await waitFor('the banner again', async () => output.includes('convos-agents is running'), 240_000);
  await waitFor(
    'the claimed instance, still claimed',
    async () => {
      const res = await fetch(`${api}/api/pool/instances/${instanceId}`, {
        headers: { authorization: `Bearer ${apiKey}` },
      });
      const body = (await res.json()) as { status?: string; agentName?: string };
      return body.status === 'claimed' && body.agentName === 'Started';
    },
    60_000,
  );
  expect(['0', 'SIGINT']).toContain(await stop(second));
  await waitFor('the stack to stop again', async () => /\] stopped/.test(output), 60_000);
}, 600_000);
