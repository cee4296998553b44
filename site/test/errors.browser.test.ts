// Error states a visitor can meet: the per-IP claim limit, and the API being down.
import type { ChildProcess } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { agents, ensureIdle, launch, newPage, shot } from './helpers';
import { freePort, startSite, stopProc } from './site-server';

let browser: Browser;
const procs: ChildProcess[] = [];
beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  for (const p of procs) await stopProc(p, 5_000);
});

describe('error states', () => {
  it('limits new claims per client IP, and says when to try again', async () => {
    const site = await startSite(inject('apiUrl'), inject('apiKey'), { SITE_CLAIM_RATE_LIMIT: '1' });
    procs.push(site.proc);
    await ensureIdle(1);
    const { page } = await newPage(browser);
    await page.goto(`${site.url}/a/habit-buddy`);
    await page.click('button[data-start]');
    await page.locator('[data-result]').waitFor({ state: 'visible', timeout: 60_000 });
    const first = await page.locator('[data-claim]').getAttribute('data-instance-id');

    await page.click('button[data-another]');
    const before = (await agents()).filter((a) => a.status === 'claimed').length;
    await page.click('button[data-start]');
    await page.locator('[data-error]').waitFor({ state: 'visible', timeout: 30_000 });
    expect(await page.locator('[data-error-text]').textContent()).toMatch(
      /Too many new agents .* Try again in \d+ s/,
    );
    expect((await agents()).filter((a) => a.status === 'claimed').length).toBe(before);
    expect(first).toBeTruthy();
    await shot(page, 'claim-rate-limited');
    await page.close();
  });

  it('explains an unreachable API instead of failing blankly', async () => {
    const deadApi = `http://127.0.0.1:${await freePort()}`;
    const site = await startSite(deadApi, 'unused');
    procs.push(site.proc);
    const { page } = await newPage(browser);
    const home = await page.goto(site.url);
    expect(home?.status()).toBe(503);
    expect(await page.locator('[role="alert"]').first().textContent()).toMatch(/could not be loaded/);
    expect(await page.locator('[data-availability-text]').textContent()).toMatch(/unknown/);
    await shot(page, 'api-down');
    const tpl = await fetch(`${site.url}/a/trip-planner`);
    expect(tpl.status).toBe(503);
    expect(tpl.headers.get('retry-after')).toBe('30');
    const claim = await fetch(`${site.url}/api/claim`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'dead-1' },
      body: '{}',
    });
    expect(await claim.text()).toContain('"code":"API_UNREACHABLE"');
    await page.close();
  });
});
