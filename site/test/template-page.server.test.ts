// A template page against the built site server: each skill the API says this deployment cannot deliver is
// marked on the page with the API's reason, instead of being promised like the others.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeApi, startFakeApi } from './fake-api';
import { startSite, stopProc } from './site-server';

let api: FakeApi;
let site: { proc: ChildProcess; url: string };

beforeAll(async () => {
  api = await startFakeApi();
  site = await startSite(api.url, api.apiKey);
});
afterAll(async () => {
  await stopProc(site?.proc);
  await api?.close();
});

describe('template page', () => {
  it('marks the skills this deployment cannot deliver, with the reason, and promises the others', async () => {
    const res = await fetch(`${site.url}/a/trip-planner`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toMatch(
      /<li class="tag"[^>]*data-skill="planning"[^>]*data-available="true"[^>]*>planning<\/li>/,
    );
    expect(html).toMatch(/<li class="tag tag-off"[^>]*data-skill="web-search"[^>]*data-available="false"/);
    const notice = /<div class="notice warn"[^>]*data-unavailable-skills[^>]*>([\s\S]*?)<\/div>/.exec(
      html,
    )?.[1];
    expect(notice).toContain('<strong>web-search</strong>: web search is not set up for these agents');
    expect(notice).not.toContain('planning');
    expect(api.violations).toEqual([]);
  });
});
