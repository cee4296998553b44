// Shared helpers for the browser tests: headless Debian Chromium via playwright-core (never downloads
// a browser), screenshots under <repo>/test-artifacts/site/, and direct API calls for setup/assertions.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { inject } from 'vitest';

export const siteUrl = () => inject('siteUrl');
export const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts/site');

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A fresh page that fails the test on any request to a host other than the site. */
export async function newPage(
  browser: Browser,
  width = 1280,
  height = 900,
): Promise<{ page: Page; foreign: string[] }> {
  const ctx = await browser.newContext({ viewport: { width, height } });
  const page = await ctx.newPage();
  const foreign: string[] = [];
  const origin = new URL(siteUrl()).origin;
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith(origin) && !u.startsWith('data:')) foreign.push(u);
  });
  return { page, foreign };
}

export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = resolve(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export async function api<T = unknown>(
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; data: T }> {
  const res = await fetch(`${inject('apiUrl')}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${inject('apiKey')}`,
      accept: 'application/json',
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: init.body === undefined ? null : JSON.stringify(init.body),
  });
  const text = await res.text();
  return { status: res.status, data: (text ? JSON.parse(text) : null) as T };
}

export interface Counts {
  idle: number;
  starting: number;
  claimed: number;
  [k: string]: number;
}
export const counts = async () => (await api<Counts>('/api/pool/counts')).data;

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  ms = 60_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Makes sure at least `n` idle instances exist (sets the target and waits for the pool to fill). */
export async function ensureIdle(n: number, ms = 90_000): Promise<void> {
  const c = await counts();
  if (c.idle >= n) return;
  await api('/api/pool/target', { method: 'PUT', body: { targetIdle: n } });
  await waitFor(async () => (await counts()).idle >= n, ms, `${n} idle instances`);
}

export interface AgentRow {
  id: string;
  status: string;
  agentName: string | null;
  templateSlug: string | null;
  inviteUrl: string | null;
}
export async function agents(): Promise<AgentRow[]> {
  const { data } = await api<Record<string, AgentRow[]>>('/api/pool/agents');
  return Object.values(data).flat();
}
