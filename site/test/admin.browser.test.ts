// Operator console against the real stack: login, replenish (streamed), kill, instance detail, CSRF, logout.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { agents, ensureIdle, launch, newPage, shot, siteUrl, waitFor } from './helpers';

let browser: Browser;
let page: Page;
const dialogs: string[] = [];
beforeAll(async () => {
  browser = await launch();
  page = (await newPage(browser, 1440, 1000)).page;
  // The console asks before destructive actions; accept and remember what it asked.
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.accept();
  });
});
afterAll(async () => {
  await browser?.close();
});

async function login(p: Page, key: string) {
  await p.goto(`${siteUrl()}/admin`);
  await p.fill('#key', key);
  await Promise.all([
    p.waitForLoadState('load'),
    p.click('form[action="/admin/login"] button[type="submit"]'),
  ]);
}

describe('operator console', () => {
  it('rejects a wrong key and logs in with the operator key', async () => {
    await login(page, 'definitely-not-the-key');
    expect(await page.locator('[data-login-error]').textContent()).toContain('not valid');
    await shot(page, 'admin-login-error');
    await login(page, inject('apiKey'));
    expect(await page.locator('h1').textContent()).toBe('Operator console');
    const cookie = (await page.context().cookies()).find((c) => c.name === 'convos_admin');
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe('Strict');
    expect(await page.content()).not.toContain(inject('apiKey'));
    // One count per live status, in lifecycle order.
    expect(
      await page.locator('[data-counts] li').evaluateAll((lis) => lis.map((li) => li.dataset.count)),
    ).toEqual([
      'starting',
      'idle',
      'claiming',
      'pending_acceptance',
      'claimed',
      'crashed',
      'failed',
      'destroying',
    ]);
  });

  it('replenishes the pool, following each new instance until it is ready', async () => {
    await page.fill('#rep-n', '2');
    await page.click('form[data-action="replenish"] button');
    const summary = page.locator('[data-progress-summary]');
    await page.locator('[data-pool-progress][data-done="ok"]').waitFor({ timeout: 90_000 });
    expect(await summary.textContent()).toBe('2 of 2 ready, 0 failed.');
    const ids = await page
      .locator('[data-progress-list] li')
      .evaluateAll((els) =>
        els.map((e) => [e.getAttribute('data-progress-id'), e.getAttribute('data-state')]),
      );
    expect(ids).toHaveLength(2);
    for (const [id, state] of ids) {
      expect(state).toBe('ready');
      expect(['idle', 'claiming', 'claimed']).toContain((await agents()).find((a) => a.id === id)?.status);
    }
    await shot(page, 'admin');
  });

  it('filters instances, opens one, and kills it', async () => {
    await ensureIdle(1);
    // The table is server-rendered: reload until the filtered view lists an idle instance.
    const rows = page.locator('tr[data-instance]');
    await waitFor(
      async () => {
        await page.goto(`${siteUrl()}/admin?status=idle`);
        return (await rows.count()) > 0;
      },
      30_000,
      'an idle row in the console',
    );
    for (const s of await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-status'))))
      expect(s).toBe('idle');
    const id = (await rows.first().getAttribute('data-instance')) ?? '';

    await page.click(`a[href="/admin/instances/${encodeURIComponent(id)}"]`);
    await page.waitForURL(`**/admin/instances/${encodeURIComponent(id)}`);
    expect(await page.locator('[data-temporal-link]').getAttribute('href')).toMatch(
      new RegExp(`/namespaces/[^/]+/workflows/instance-${id}$`),
    );
    await shot(page, 'admin-instance');

    await page.goto(`${siteUrl()}/admin?status=idle`);
    await Promise.all([
      page.waitForLoadState('load'),
      page.click(`tr[data-instance="${id}"] button[aria-label="kill ${id}"]`),
    ]);
    expect(dialogs).toContain(`Destroy instance ${id}?`);
    expect(await page.locator('[data-flash]').textContent()).toContain(id);
    await waitFor(
      async () => (await agents()).find((a) => a.id === id)?.status !== 'idle',
      30_000,
      'the killed instance to leave idle',
    );
  });

  it('launches an agent from the console and shows its QR code', async () => {
    await ensureIdle(1);
    await page.goto(`${siteUrl()}/admin`);
    await page.selectOption('#claim-template', 'standup-host');
    await page.fill('#claim-name', 'Console Launch');
    await page.click('button[data-start]');
    await page.locator('[data-result]').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await page.locator('[data-result-qr]').getAttribute('src')).toMatch(/^data:image\/png;base64,/);
    const id = await page.locator('[data-claim]').getAttribute('data-instance-id');
    const row = (await agents()).find((a) => a.id === id);
    expect(row).toMatchObject({
      status: 'claimed',
      agentName: 'Console Launch',
      templateSlug: 'standup-host',
    });
    await shot(page, 'admin-launch');
  });

  it('rejects state-changing requests without a valid CSRF token', async () => {
    const result = await page.evaluate(async () => {
      const post = async (fields: Record<string, string>) => {
        const body = new URLSearchParams(fields);
        const r = await fetch('/admin/action', { method: 'POST', body });
        return r.status;
      };
      return {
        missing: await post({ action: 'replenish', count: '1' }),
        wrong: await post({ action: 'replenish', count: '1', csrf: 'forged' }),
        claim: (
          await fetch('/admin/claim', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': 'x1' },
            body: '{}',
          })
        ).status,
      };
    });
    expect(result).toEqual({ missing: 403, wrong: 403, claim: 403 });
    // And without the session at all (as another site, or a scripted client without the cookie).
    const anon = await fetch(`${siteUrl()}/admin/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: siteUrl() },
      body: 'action=replenish&count=1&csrf=x',
    });
    expect(anon.status).toBe(401);
    // A login post without the form's token is refused even with the right key (login CSRF).
    const forged = await fetch(`${siteUrl()}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: siteUrl() },
      body: new URLSearchParams({ key: inject('apiKey'), csrf: 'guess' }),
    });
    expect(forged.status).toBe(303);
    expect(forged.headers.get('location')).toBe('/admin?error=expired');
    expect(forged.headers.getSetCookie().some((c) => c.startsWith('convos_admin='))).toBe(false);
    await shot(page, 'admin-after-csrf');
  });

  it('logs out and revokes the session', async () => {
    const cookie = (await page.context().cookies()).find((c) => c.name === 'convos_admin');
    await Promise.all([page.waitForLoadState('load'), page.click('form[action="/admin/logout"] button')]);
    expect(await page.locator('#key').count()).toBe(1);
    await shot(page, 'admin-logged-out');
    // The old cookie no longer opens the console.
    const res = await fetch(`${siteUrl()}/admin`, { headers: { cookie: `convos_admin=${cookie?.value}` } });
    expect(await res.text()).toContain('id="key"');
  });
});
