// The console's costs and environments against the real stacks: fleet totals on the front page, an
// instance's LLM usage and raising its cap (the XMTP dev pool's instances hold keys of the OpenRouter
// stand-in), a streamed replenish and drain (each instance's states as the page showed them), and the
// environment switcher between the two pools (names only in the page, never a key).
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { api, ensureIdle, launch, newPage, shot, siteUrl, waitFor } from './helpers';

let browser: Browser;
let page: Page;
const dialogs: string[] = [];

beforeAll(async () => {
  browser = await launch();
  page = (await newPage(browser, 1440, 1000)).page;
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.accept();
  });
  await page.goto(`${siteUrl()}/admin`);
  await page.fill('#key', inject('apiKey'));
  await Promise.all([page.waitForLoadState('load'), page.click('form[action="/admin/login"] button')]);
});
afterAll(async () => {
  await browser?.close();
});

/** Every state each instance showed in the progress panel, in order (recorded in the page as it changes). */
async function recordProgress(p: Page) {
  await p.evaluate(() => {
    const w = window as unknown as { progress: Record<string, string[]> };
    w.progress = {};
    const list = document.querySelector('[data-progress-list]');
    if (!list) throw new Error('no progress list');
    new MutationObserver(() => {
      for (const li of list.querySelectorAll('li')) {
        const id = li.getAttribute('data-progress-id') ?? '';
        const state = li.getAttribute('data-state') ?? '';
        const seen = w.progress[id] ?? [];
        if (seen.at(-1) !== state) seen.push(state);
        w.progress[id] = seen;
      }
    }).observe(list, { subtree: true, childList: true, attributes: true });
  });
}
const progress = (p: Page) =>
  p.evaluate(() => (window as unknown as { progress: Record<string, string[]> }).progress);

async function standin(path: string, body: unknown) {
  const res = await fetch(`${inject('openrouterUrl')}${path}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
}

let replenished = '';

describe('console costs and progress', () => {
  it('shows the fleet totals on the front page', async () => {
    await ensureIdle(1);
    const { data } = await api<{ credits: { remainingUsd: number; totalUsd: number } }>('/api/pool/costs');
    await page.goto(`${siteUrl()}/admin`);
    // Nothing was spent yet on the stand-in's account of 100 USD.
    expect(data.credits).toMatchObject({ totalUsd: 100, remainingUsd: 100 });
    expect(await page.locator('[data-credits-left]').textContent()).toBe('$100.00');
    expect(await page.locator('[data-credits]').textContent()).toContain('of $100.00');
    const pooled = Number(await page.locator('tr[data-held="keys"] [data-pooled]').textContent());
    expect(pooled).toBeGreaterThanOrEqual(1);
    expect(Number(await page.locator('tr[data-held="inboxes"] [data-pooled]').textContent())).toBe(0);
    expect(await page.locator('[data-workflow-link]').first().getAttribute('href')).toMatch(
      /\/namespaces\/[^/]+\/workflows\/instance-[A-Za-z0-9-]+$/,
    );
  });

  it('streams a replenish: each instance started, then ready', async () => {
    await recordProgress(page);
    await page.fill('#rep-n', '1');
    await page.click('form[data-action="replenish"] button');
    await page.locator('[data-pool-progress][data-done="ok"]').waitFor({ timeout: 90_000 });
    expect(await page.locator('[data-progress-summary]').textContent()).toBe('1 of 1 ready, 0 failed.');
    const seen = await progress(page);
    const ids = Object.keys(seen);
    expect(ids).toHaveLength(1);
    replenished = ids[0] ?? '';
    expect(seen[replenished]).toEqual(['started', 'ready']);
    const { data } = await api<{ status: string }>(`/api/pool/instances/${replenished}`);
    expect(['idle', 'claiming', 'claimed']).toContain(data.status);
    // The page stayed where it was: no reload, no flash.
    expect(await page.locator('[data-flash]').count()).toBe(0);
    await shot(page, 'admin-replenish-stream');
  });

  it("shows an instance's LLM usage against its cap, and raises the cap", async () => {
    const { data } = await api<{ resources: Array<{ kind: string; ref: string; status: string }> }>(
      `/api/pool/instances/${replenished}`,
    );
    const key = data.resources.find((r) => r.kind === 'llmKey' && r.status === 'active');
    expect(key).toBeDefined();
    await page.goto(`${siteUrl()}/admin/instances/${replenished}`);
    expect(await page.locator('[data-usage]').getAttribute('data-usage')).toBe('available');
    expect(await page.locator('[data-usage-limit]').textContent()).toBe('$5.00');
    expect(await page.locator('#llm-cap').inputValue()).toBe('5');

    // The agent spends 1.25; the operator raises the cap to 12 (which also drops the kept usage).
    await standin(`/_standin/keys/${key?.ref}/usage`, { usage: 1.25 });
    await page.fill('#llm-cap', '12');
    await Promise.all([page.waitForLoadState('load'), page.click('form[data-action="llm-limit"] button')]);
    expect(await page.locator('[data-flash]').textContent()).toBe(
      `Monthly LLM cap of ${replenished} set to 12 USD.`,
    );
    expect(await page.locator('[data-usage-spent]').textContent()).toBe('$1.25');
    expect(await page.locator('[data-usage-limit]').textContent()).toBe('$12.00');
    expect(await page.locator('[data-usage-remaining]').textContent()).toBe('$10.75');
    expect(await page.locator('[data-usage]').textContent()).toContain('resets monthly');
    // The audit trail has it, and a bad amount is refused by the site before the API sees it.
    expect(await page.locator('[data-events]').textContent()).toContain('LLM key cap set to 12 USD a month');
    const refused = await page.evaluate(async (id) => {
      const csrf = (document.querySelector('input[name="csrf"]') as HTMLInputElement).value;
      const body = new URLSearchParams({ action: 'llm-limit', id, monthlyLimitUsd: '1e9', csrf });
      const r = await fetch('/admin/action', {
        method: 'POST',
        body,
        headers: { accept: 'application/json' },
      });
      return { status: r.status, body: await r.json() };
    }, replenished);
    expect(refused).toMatchObject({ status: 400, body: { code: 'BAD_INPUT' } });
    await shot(page, 'admin-instance-usage');
  });

  it('streams a drain: each instance draining, then drained', async () => {
    await ensureIdle(1);
    await page.goto(`${siteUrl()}/admin`);
    await recordProgress(page);
    await page.fill('#drain-n', '1');
    await page.click('form[data-action="drain"] button');
    await page.locator('[data-pool-progress][data-done="ok"]').waitFor({ timeout: 90_000 });
    expect(dialogs).toContain('Drain idle/starting instances? They will be destroyed.');
    expect(await page.locator('[data-progress-summary]').textContent()).toBe('1 of 1 drained, 0 failed.');
    const seen = await progress(page);
    expect(Object.values(seen)).toHaveLength(1);
    expect(Object.values(seen)[0]?.at(0)).toBe('draining');
    expect(Object.values(seen)[0]?.at(-1)).toBe('drained');
  });
});

describe('environment switcher', () => {
  it('switches the console between the configured pools, keys never in the page', async () => {
    expect(inject('environments')).toEqual(['xmtp-dev', 'no-xmtp']);
    await page.goto(`${siteUrl()}/admin`);
    expect(await page.locator('[data-environment]').textContent()).toBe('xmtp-dev');
    expect(await page.locator('main, body').first().textContent()).toContain('XMTP dev');

    await page.selectOption('#env-select', 'no-xmtp');
    await Promise.all([page.waitForLoadState('load'), page.click('form[data-environment-switcher] button')]);
    expect(await page.locator('[data-environment]').textContent()).toBe('no-xmtp');
    expect(await page.locator('[data-flash]').textContent()).toBe('Now showing environment no-xmtp.');
    expect(await page.locator('body').textContent()).toContain('XMTP off');
    // Its pool has no OpenRouter: the totals say so.
    expect(await page.locator('[data-credits]').textContent()).toBe('No LLM key provider is configured.');
    // The instances listed are the other pool's.
    const res = await fetch(`${inject('chatApiUrl')}/api/pool/agents`, {
      headers: { authorization: `Bearer ${inject('chatApiKey')}` },
    });
    const chatIds = new Set(
      Object.values((await res.json()) as Record<string, Array<{ id: string }>>)
        .flat()
        .map((a) => a.id),
    );
    await waitFor(
      async () => {
        await page.goto(`${siteUrl()}/admin`);
        return (await page.locator('tr[data-instance]').count()) > 0;
      },
      30_000,
      'a row of the no-xmtp pool',
    );
    const rows = await page
      .locator('tr[data-instance]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-instance')));
    expect(rows.filter((id) => chatIds.has(id ?? '')).length).toBeGreaterThan(0);
    const { data: devAgents } = await api<Record<string, Array<{ id: string }>>>('/api/pool/agents');
    const devIds = new Set(
      Object.values(devAgents)
        .flat()
        .map((a) => a.id),
    );
    expect(rows.filter((id) => devIds.has(id ?? ''))).toEqual([]);

    const html = await page.content();
    expect(html).not.toContain(inject('apiKey'));
    expect(html).not.toContain(inject('chatApiKey'));
    expect(html).not.toContain(inject('chatApiUrl'));
    const cookie = (await page.context().cookies()).find((c) => c.name === 'convos_env');
    expect(cookie).toMatchObject({ value: 'no-xmtp', httpOnly: true, sameSite: 'Strict' });
    await shot(page, 'admin-environment');

    // An environment that is not configured is refused and changes nothing.
    const forged = await page.evaluate(async () => {
      const csrf = (document.querySelector('input[name="csrf"]') as HTMLInputElement).value;
      const body = new URLSearchParams({ environment: 'http://evil.example', csrf });
      return (await fetch('/admin/environment', { method: 'POST', body })).status;
    });
    expect(forged).toBe(400);
    await page.goto(`${siteUrl()}/admin`);
    expect(await page.locator('[data-environment]').textContent()).toBe('no-xmtp');

    await page.selectOption('#env-select', 'xmtp-dev');
    await Promise.all([page.waitForLoadState('load'), page.click('form[data-environment-switcher] button')]);
    expect(await page.locator('[data-environment]').textContent()).toBe('xmtp-dev');
  });
});
