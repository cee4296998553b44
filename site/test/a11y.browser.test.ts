// Automated accessibility audit (axe-core, WCAG 2.x A/AA rules) of every page type, at phone and desktop
// widths. axe runs inside the page, so this context bypasses our CSP to inject it (the site itself never
// loads third-party scripts).
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, shot, siteUrl } from './helpers';

const axeSource: string = createRequire(import.meta.url)('axe-core').source;
let browser: Browser;
beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});

interface Violation {
  id: string;
  impact: string;
  help: string;
  nodes: { target: string[] }[];
}

async function audit(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: axeSource });
  const violations = (await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(o: object): Promise<{ violations: unknown[] }> } }).axe;
    const r = await axe.run({
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return r.violations;
  })) as Violation[];
  return violations.map(
    (v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`,
  );
}

describe('accessibility (axe, WCAG 2.1 AA)', () => {
  for (const [width, height] of [
    [375, 800],
    [1440, 900],
  ] as const) {
    it(`public pages have no violations at ${width} px`, async () => {
      const ctx = await browser.newContext({ viewport: { width, height }, bypassCSP: true });
      const page = await ctx.newPage();
      const found: Record<string, string[]> = {};
      for (const path of ['/', '/a/trip-planner', '/safety', '/no-such-page', '/admin']) {
        await page.goto(`${siteUrl()}${path}`);
        const v = await audit(page);
        if (v.length) found[path] = v;
      }
      // The claim panel's states: the join form opened with an error showing.
      await page.goto(`${siteUrl()}/a/trip-planner`);
      await page.click('[data-join-details] summary');
      await page.fill('#join-url', 'not a link');
      await page.click('button[data-join]');
      const v = await audit(page);
      if (v.length) found['/a/trip-planner (join error)'] = v;
      await shot(page, `a11y-template-${width}`);
      expect(found).toEqual({});
      await ctx.close();
    });
  }

  it('the operator console has no violations', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, bypassCSP: true });
    const page = await ctx.newPage();
    await page.goto(`${siteUrl()}/admin`);
    await page.fill('#key', inject('apiKey'));
    await Promise.all([page.waitForLoadState('load'), page.click('form[action="/admin/login"] button')]);
    expect(await page.locator('h1').textContent()).toBe('Operator console');
    const found: Record<string, string[]> = {};
    const v = await audit(page);
    if (v.length) found['/admin'] = v;
    const id = await page.locator('tr[data-instance]').first().getAttribute('data-instance');
    if (id) {
      await page.goto(`${siteUrl()}/admin/instances/${encodeURIComponent(id)}`);
      const d = await audit(page);
      if (d.length) found['/admin/instances/:id'] = d;
    }
    await shot(page, 'a11y-admin');
    expect(found).toEqual({});
    await ctx.close();
  });
});
