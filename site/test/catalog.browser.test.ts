// Browse and filter the catalog, open a template page (OG/Twitter meta, OG image, QR), 404 and safety.
import { gzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, newPage, shot, siteUrl } from './helpers';

let browser: Browser;
beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});

describe('catalog', () => {
  it('lists at least 30 templates, filters by search and category pill, shows live availability', async () => {
    const { page, foreign } = await newPage(browser);
    const scripts: Promise<Buffer>[] = [];
    page.on('response', (res) => {
      if (res.request().resourceType() === 'script') scripts.push(res.body());
    });
    await page.goto(siteUrl());
    const cards = page.locator('[data-card]');
    expect(await cards.count()).toBeGreaterThanOrEqual(30);
    expect(await page.locator('[data-pill]').count()).toBeGreaterThanOrEqual(9); // "All" + 8 categories
    await expect
      .poll(() => page.locator('[data-availability-text]').textContent())
      .toMatch(/ready now|busy|warming/);

    // Search filters instantly and keeps the URL shareable.
    await page.fill('#q', 'budget');
    const visible = page.locator('[data-card]:not([hidden])');
    await expect.poll(() => visible.count()).toBeGreaterThan(0);
    expect(await visible.count()).toBeLessThan(await cards.count());
    for (const text of await visible.locator('article').allTextContents())
      expect(text.toLowerCase()).toContain('budget');
    expect(page.url()).toContain('q=budget');

    // A category pill narrows to that category and is marked as current.
    await page.fill('#q', '');
    await page.click('[data-pill="Travel"]');
    await expect.poll(() => page.locator('[data-pill="Travel"]').getAttribute('aria-current')).toBe('true');
    const cats = await visible.locator('.cat').allTextContents();
    expect(cats.length).toBeGreaterThan(0);
    expect(new Set(cats)).toEqual(new Set(['Travel']));
    expect(await visible.locator('.tag').count()).toBeGreaterThan(0); // skill tags on cards
    await shot(page, 'home-filtered');

    // Without JavaScript the same filter works from the query string.
    const res = await fetch(`${siteUrl()}/?category=Finance`);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(html).toMatch(/aria-current="true"[^>]*>Finance|data-pill="Finance"[^>]*aria-current="true"/);

    // No requests to other hosts, and the home page's JavaScript stays far under 50 KB gzipped.
    expect(foreign).toEqual([]);
    const inline = await page.locator('script:not([src])').allTextContents();
    const jsGzip =
      (await Promise.all(scripts)).reduce((n, b) => n + gzipSync(b).length, 0) +
      gzipSync(inline.join('')).length;
    expect(jsGzip).toBeLessThan(50 * 1024);
    await page.close();
  });

  it('opens a template page with OG/Twitter meta, an OG image and a QR code', async () => {
    const { page, foreign } = await newPage(browser);
    await page.goto(siteUrl());
    await page.click('a[href="/a/trip-planner"]');
    await page.waitForURL('**/a/trip-planner');
    expect(await page.locator('h1').textContent()).toBe('Trip Planner');
    const meta = async (sel: string) => page.locator(sel).getAttribute('content');
    expect(await meta('meta[property="og:title"]')).toContain('Trip Planner');
    expect(await meta('meta[property="og:image"]')).toMatch(/\/og\/trip-planner\.png$/);
    expect(await meta('meta[name="twitter:card"]')).toBe('summary_large_image');
    expect(await meta('meta[name="twitter:image"]')).toMatch(/\/og\/trip-planner\.png$/);
    expect(await page.locator('button[data-start]').textContent()).toContain('Start this agent');

    const og = await fetch(`${siteUrl()}/og/trip-planner.png`);
    expect(og.headers.get('content-type')).toBe('image/png');
    const png = Buffer.from(await og.arrayBuffer());
    expect(png.readUInt32BE(16)).toBe(1200); // IHDR width
    expect(png.readUInt32BE(20)).toBe(630); // IHDR height
    const qr = await fetch(`${siteUrl()}/qr/trip-planner.png`);
    expect(qr.status).toBe(200);
    expect(qr.headers.get('content-type')).toBe('image/png');
    expect(
      await page.locator('img[src="/qr/trip-planner.png"]').evaluate((i: HTMLImageElement) => i.naturalWidth),
    ).toBeGreaterThan(0);
    await shot(page, 'template');
    expect(foreign).toEqual([]);
    await page.close();
  });

  it('answers unknown pages and templates with a real 404 page', async () => {
    const { page } = await newPage(browser);
    for (const path of ['/a/no-such-agent', '/nope', '/a/Bad_Slug']) {
      const res = await page.goto(`${siteUrl()}${path}`);
      expect(res?.status()).toBe(404);
      expect(await page.locator('h1').textContent()).toBe('Page not found');
    }
    expect((await fetch(`${siteUrl()}/og/no-such-agent.png`)).status).toBe(404);
    await shot(page, 'not-found');
    await page.close();
  });

  it('is usable at 375 px and by keyboard (skip link, labelled search)', async () => {
    const { page } = await newPage(browser, 375, 800);
    await page.goto(`${siteUrl()}/safety`);
    expect(await page.locator('h1').textContent()).toContain('Safety');
    await page.goto(siteUrl());
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    expect(await page.locator('label[for="q"]').count()).toBe(1);
    await shot(page, 'home-375');
    await page.close();
  });
});
