// The claim flow against the real stack: progress, result QR, double-click idempotency,
// joining by invite link (client-side and API validation), and the empty-pool waiting state.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { agents, api, counts, ensureIdle, launch, newPage, shot, siteUrl, waitFor } from './helpers';

let browser: Browser;
beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});

async function resultOf(page: Page) {
  await page.locator('[data-result]').waitFor({ state: 'visible', timeout: 60_000 });
  return {
    id: await page.locator('[data-claim]').getAttribute('data-instance-id'),
    link: await page.locator('[data-result-link]').textContent(),
    qr: await page.locator('[data-result-qr]').getAttribute('src'),
  };
}

describe('claim', () => {
  it('starts an agent, shows progress and the QR code for its link', async () => {
    await ensureIdle(1);
    const { page, foreign } = await newPage(browser);
    await page.goto(`${siteUrl()}/a/meeting-scribe`);
    await page.fill('#claim-name', 'Scribe Test');
    await page.click('button[data-start]');
    const r = await resultOf(page);
    expect(r.id).toBeTruthy();
    expect(r.qr).toMatch(/^data:image\/png;base64,/);
    expect(r.link).toMatch(/^(https:\/\/|convos:\/\/|http:\/\/)/);
    expect(await page.locator('[data-step="reserve"]').getAttribute('data-status')).toBe('ok');
    const row = (await agents()).find((a) => a.id === r.id);
    expect(row?.status).toBe('claimed');
    expect(row?.agentName).toBe('Scribe Test');
    expect(row?.templateSlug).toBe('meeting-scribe');
    await shot(page, 'claim-result');
    expect(foreign).toEqual([]);
    await page.close();
  });

  it('binds exactly one agent on a double click', async () => {
    await ensureIdle(2);
    const before = (await counts()).claimed;
    const { page } = await newPage(browser);
    const posts: string[] = [];
    page.on('request', (req) => {
      if (req.url().endsWith('/api/claim')) posts.push(req.headers()['idempotency-key'] ?? '');
    });
    await page.goto(`${siteUrl()}/a/daily-planner`);
    await page.dblclick('button[data-start]');
    const r = await resultOf(page);
    expect(new Set(posts).size).toBe(1); // every request of this click carried the same key
    await new Promise((res) => setTimeout(res, 1500)); // give a stray second claim time to land
    expect((await counts()).claimed).toBe(before + 1);
    expect(
      (await agents()).filter(
        (a) => a.status === 'claimed' && a.templateSlug === 'daily-planner' && a.id === r.id,
      ),
    ).toHaveLength(1);
    await shot(page, 'claim-double-click');

    // The same key replayed straight at the site returns the same agent, never a second one.
    const key = posts[0] ?? '';
    const replay = await fetch(`${siteUrl()}/api/claim`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key, origin: siteUrl() },
      body: JSON.stringify({ templateSlug: 'daily-planner', agentName: 'Daily Planner' }),
    });
    const text = await replay.text();
    expect(text).toContain(`"instanceId":"${r.id}"`);
    expect((await counts()).claimed).toBe(before + 1);
    await page.close();
  });

  it('retries a lost response with the same key and gets the same agent', async () => {
    await ensureIdle(1);
    const before = (await counts()).claimed;
    const { page } = await newPage(browser);
    const keys: string[] = [];
    let lost = '';
    await page.route('**/api/claim', async (route) => {
      keys.push(route.request().headers()['idempotency-key'] ?? '');
      if (keys.length === 1) {
        // The claim reaches the server and succeeds, but the answer never reaches the page.
        lost = await (await route.fetch()).text();
        await route.abort('connectionreset');
        return;
      }
      await route.continue();
    });
    await page.goto(`${siteUrl()}/a/book-club-host`);
    await page.click('button[data-start]');
    const r = await resultOf(page);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
    expect(lost).toContain(`"instanceId":"${r.id}"`);
    expect((await counts()).claimed).toBe(before + 1);
    await shot(page, 'claim-retry-same-key');
    await page.close();
  });

  it('validates a pasted invite link, in the page and at the API', async () => {
    const { page } = await newPage(browser);
    await page.goto(`${siteUrl()}/a/event-organizer`);
    await page.click('[data-join-details] summary');
    const sent: string[] = [];
    page.on('request', (req) => {
      if (req.url().endsWith('/api/claim')) sent.push(req.postData() ?? '');
    });

    // Obviously wrong: caught in the page, nothing is sent.
    await page.fill('#join-url', 'https://example.com/not-an-invite');
    await page.click('button[data-join]');
    await expect.poll(() => page.locator('[data-join-error]').isVisible()).toBe(true);
    expect(await page.locator('[data-join-error]').textContent()).toMatch(/convos\.org/);
    expect(await page.locator('#join-url').getAttribute('aria-invalid')).toBe('true');
    expect(sent).toHaveLength(0);
    await shot(page, 'join-invalid');

    // Right shape, but not a real signed invite: the API refuses it (400) and the page says so.
    await ensureIdle(2);
    const claimedBefore = (await counts()).claimed;
    await page.fill('#join-url', 'https://dev.convos.org/v2?i=BADinviteAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    await page.click('button[data-join]');
    await page.locator('[data-error]').waitFor({ state: 'visible', timeout: 60_000 });
    expect(sent).toHaveLength(1);
    expect(await page.locator('[data-error-text]').textContent()).toMatch(/invite/i);
    expect(await page.locator('[data-join-error]').isVisible()).toBe(true);
    expect((await counts()).claimed).toBe(claimedBefore);
    await shot(page, 'join-rejected');
    await page.close();
  });

  it.skipIf(!inject('joinUrl'))('joins the conversation of a pasted, correctly signed invite', async () => {
    await ensureIdle(1);
    const { page } = await newPage(browser);
    await page.goto(`${siteUrl()}/a/event-organizer`);
    await page.click('[data-join-details] summary');
    await page.fill('#join-url', inject('joinUrl'));
    await page.click('button[data-join]');
    const r = await resultOf(page);
    expect(await page.locator('[data-result-title]').textContent()).toMatch(/joined your conversation/);
    expect(await page.locator('[data-join-error]').isVisible()).toBe(false);
    const row = (await agents()).find((a) => a.id === r.id);
    expect(row?.status).toBe('claimed');
    expect(row?.templateSlug).toBe('event-organizer');
    await shot(page, 'join-result');
    await page.close();
  });

  it.skipIf(!inject('chatSiteUrl'))('without XMTP, gives an "Open chat" link and its QR code', async () => {
    const { page, foreign } = await newPage(browser);
    await page.goto(`${inject('chatSiteUrl')}/a/fridge-chef`);
    expect(await page.locator('[data-join-details]').count()).toBe(0); // nothing to join without XMTP
    await page.click('button[data-start]');
    const r = await resultOf(page);
    expect(r.qr).toMatch(/^data:image\/png;base64,/);
    expect(await page.locator('[data-result-open]').textContent()).toBe('Open chat');
    expect(await page.locator('[data-result-open]').getAttribute('href')).toBe(r.link);
    expect(r.link).toMatch(/^https?:\/\//);
    await shot(page, 'claim-result-chat');
    expect(foreign.filter((u) => !u.startsWith(inject('chatSiteUrl')))).toEqual([]);
    await page.close();
  });

  it('shows the empty-pool state with live counts, then completes when an agent is ready', async () => {
    // Empty the pool: no warm instances and nothing starting.
    await api('/api/pool/target', { method: 'PUT', body: { targetIdle: 0 } });
    await waitFor(
      async () => {
        const c = await counts();
        if (c.idle + c.starting === 0) return true;
        await api('/api/pool/drain', { method: 'POST', body: { count: 20 } });
        return false;
      },
      90_000,
      'an empty pool',
    );

    const { page } = await newPage(browser);
    await page.goto(`${siteUrl()}/a/trivia-host`);
    expect(await page.locator('[data-availability]').getAttribute('class')).toContain('empty');
    await page.click('button[data-start]');
    await page.locator('[data-waiting]').waitFor({ state: 'visible', timeout: 30_000 });
    await expect
      .poll(() => page.locator('[data-waiting-counts]').textContent())
      .toMatch(/\d+ ready, \d+ warming up/);
    expect(await page.locator('button[data-start]').isDisabled()).toBe(true);
    await shot(page, 'claim-empty-pool');

    // Refill: the page keeps retrying and gets an agent without another click.
    await api('/api/pool/target', { method: 'PUT', body: { targetIdle: 1 } });
    const r = await resultOf(page);
    expect(r.qr).toMatch(/^data:image\/png/);
    await page.close();
  });
});
