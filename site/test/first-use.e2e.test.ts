/**
 * A fresh clone's first use, as a new user goes through it (issue 12): `npm start` with no configuration at
 * all — no model key, no model server, the default local runtime (real OpenClaw), the default pool — then a
 * claim from the site in a real browser, "Open chat", a message, and the agent's answer. Without a model the
 * answer must say so and how to set one; never a stand-in's fake answer, never a dead link.
 *
 * Only what keeps this run from colliding with others is set: the data directory and the ports.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../test/support/ports';
import { launch, shot } from './helpers';

const rootDir = path.resolve(import.meta.dirname, '../..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convos-first-use-'));
// Two real OpenClaw runtimes boot at once on a shared 2-core machine: allow for a loaded one.
const BOOT_MS = 480_000;
/** What the runtime answers without a model (runtime/src/no-model.ts), in words a user can act on. */
const NO_MODEL = /No language model is configured[\s\S]*OPENROUTER_API_KEY/;

let output = '';
let stack: ChildProcess | null = null;
let browser: Browser | null = null;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${output.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const ports = { api: 0, site: 0 };

beforeAll(async () => {
  const [temporal, ui, api, metrics, site] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
  ports.api = api!;
  ports.site = site!;
  stack = spawn('npm', ['start', '-s'], {
    cwd: rootDir,
    // A user's shell: PATH and HOME, nothing of the test runner's environment.
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      DATA_DIR: dataDir,
      TEMPORAL_DEV_PORT: String(temporal),
      TEMPORAL_DEV_UI_PORT: String(ui),
      API_PORT: String(api),
      WORKER_METRICS_PORT: String(metrics),
      SITE_PORT: String(site),
    },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const s of [stack.stdout, stack.stderr]) s?.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor('the banner', async () => output.includes('convos-agents is running'), 240_000);
  browser = await launch();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  if (stack?.pid && stack.exitCode === null) {
    // Ctrl-C, as a user stops it: the stack stops its runtimes too.
    process.kill(-stack.pid, 'SIGINT');
    await waitFor('the stack to stop', async () => /\] stopped/.test(output), 90_000).catch(() => {
      try {
        process.kill(-stack!.pid!, 'SIGKILL');
      } catch {}
    });
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

it(
  'npm start on no configuration, a claim from the site: the chat opens and the agent answers',
  async () => {
    // The defaults: real OpenClaw agents, and the banner says there is no model and what to set.
    expect(output).toMatch(/openclaw runtime, no model: agents answer how to set OPENROUTER_API_KEY/);
    const api = `http://127.0.0.1:${ports.api}`;
    const site = `http://127.0.0.1:${ports.site}`;
    await waitFor('the site', async () => (await fetch(`${site}/`)).ok, 240_000);
    await waitFor(
      'a warm agent',
      async () => ((await (await fetch(`${api}/api/pool/counts`)).json()) as { idle: number }).idle >= 1,
      BOOT_MS,
    );

    const page = await browser!.newPage();
    await page.goto(`${site}/a/meeting-scribe`);
    await page.fill('#claim-name', 'Scribe');
    await page.click('button[data-start]');
    await page.locator('[data-result]').waitFor({ state: 'visible', timeout: 120_000 });
    await shot(page, 'first-use-claimed');
    const open = page.locator('[data-result-open]');
    expect(await open.textContent()).toBe('Open chat');
    const chatUrl = (await open.getAttribute('href')) ?? '';
    // The runtime's own chat page on this machine: reachable, not a stand-in's address.
    expect(chatUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    expect(chatUrl).not.toContain('standin');

    const chat = await browser!.newPage();
    const opened = await chat.goto(chatUrl);
    expect(opened?.status()).toBe(200);
    expect(await chat.locator('header').textContent()).toBe('Scribe');
    const sentAt = Date.now();
    await chat.fill('#t', 'Hello! What can you do?');
    await chat.press('#t', 'Enter');
    const reply = chat.locator('.m.agent').first();
    await waitFor('the agent to answer', async () => ((await reply.textContent()) ?? '…') !== '…', 120_000);
    const answer = (await reply.textContent()) ?? '';
    await shot(chat, 'first-use-chat');
    expect(answer).toMatch(NO_MODEL);
    // Not an error line of the page either: the agent itself answered.
    expect(await chat.locator('.m.err').count()).toBe(0);
    console.log(`first-use: the first answer came ${Date.now() - sentAt} ms after sending`);
  },
  BOOT_MS + 300_000,
);
