// The replenish/drain progress stream against a stubbed API: each instance followed to ready, failed (with
// its reason) or drained, the API's refusal passed on, and the environment's own URL and key used.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SiteEnvironment } from './config';
import { progressOf, streamPoolChange } from './pool-progress';
import { SseParser } from './sse';

const env: SiteEnvironment = {
  name: 'staging',
  apiUrl: 'http://staging.invalid',
  apiKey: 'k-staging',
  temporalUiUrl: 'http://ui.invalid',
  temporalNamespace: 'default',
};
const groups = (rows: Array<{ id: string; status: string; lastError?: string }>) => {
  const g: Record<string, unknown[]> = {
    claimed: [],
    crashed: [],
    idle: [],
    starting: [],
    failed: [],
    claiming: [],
    destroying: [],
  };
  for (const r of rows) g[r.status]?.push({ id: r.id, status: r.status, lastError: r.lastError ?? null });
  return g;
};

async function events(res: Response) {
  const parser = new SseParser();
  return parser.push(await res.text()).map((e) => ({ event: e.event, ...JSON.parse(e.data) }));
}

afterEach(() => vi.unstubAllGlobals());

describe('streamPoolChange', () => {
  it('follows a replenish: started, then ready or failed with the reason', async () => {
    const calls: Array<{ url: string; auth: string }> = [];
    const listings = [
      groups([
        { id: 'a', status: 'starting' },
        { id: 'b', status: 'starting' },
      ]),
      groups([
        { id: 'a', status: 'idle' },
        { id: 'b', status: 'failed', lastError: 'provision: telnyx answered 503' },
      ]),
    ];
    vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
      calls.push({ url, auth: (init.headers as Record<string, string>).authorization ?? '' });
      if (url.endsWith('/api/pool/replenish'))
        return Response.json({ ok: true, started: ['a', 'b'] }, { status: 202 });
      return Response.json(listings.shift() ?? listings.at(-1));
    });
    const res = streamPoolChange(env, 'replenish', 2, new AbortController().signal, { pollMs: 1 });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(await events(res)).toEqual([
      { event: 'instance', id: 'a', state: 'started', status: 'starting' },
      { event: 'instance', id: 'b', state: 'started', status: 'starting' },
      { event: 'instance', id: 'a', state: 'ready', status: 'idle' },
      {
        event: 'instance',
        id: 'b',
        state: 'failed',
        status: 'failed',
        reason: 'provision: telnyx answered 503',
      },
      {
        event: 'complete',
        ok: true,
        kind: 'replenish',
        ids: ['a', 'b'],
        ready: 1,
        drained: 0,
        failed: 1,
        pending: 0,
      },
    ]);
    expect(
      calls.every((c) => c.url.startsWith('http://staging.invalid/') && c.auth === 'Bearer k-staging'),
    ).toBe(true);
  });

  it('follows a drain until the instances are gone', async () => {
    let round = 0;
    vi.stubGlobal('fetch', async (url: string) => {
      if (url.endsWith('/api/pool/drain'))
        return Response.json({ ok: true, draining: ['a'] }, { status: 202 });
      if (url.endsWith('/api/pool/agents'))
        return Response.json(round++ === 0 ? groups([{ id: 'a', status: 'destroying' }]) : groups([]));
      return Response.json({ error: 'no instance a', code: 'NOT_FOUND' }, { status: 404 });
    });
    const out = await events(streamPoolChange(env, 'drain', 1, new AbortController().signal, { pollMs: 1 }));
    expect(out.map((e) => `${e.event}:${e.state ?? e.drained}`)).toEqual([
      'instance:draining',
      'instance:drained',
      'complete:1',
    ]);
  });

  it("passes the API's refusal on, and stops following at the deadline", async () => {
    vi.stubGlobal('fetch', async () =>
      Response.json({ error: 'the pool is at its maximum', code: 'POOL_FULL' }, { status: 409 }),
    );
    expect(await events(streamPoolChange(env, 'replenish', 1, new AbortController().signal))).toEqual([
      { event: 'complete', ok: false, status: 409, code: 'POOL_FULL', error: 'the pool is at its maximum' },
    ]);
    vi.stubGlobal('fetch', async (url: string) =>
      url.endsWith('/replenish')
        ? Response.json({ ok: true, started: ['slow'] }, { status: 202 })
        : Response.json(groups([{ id: 'slow', status: 'starting' }])),
    );
    const out = await events(
      streamPoolChange(env, 'replenish', 1, new AbortController().signal, { pollMs: 5, deadlineMs: 30 }),
    );
    expect(out.at(-1)).toMatchObject({ event: 'complete', ok: true, ready: 0, pending: 1 });
  });

  it('reads a status into a progress state', () => {
    expect(progressOf('replenish', 'x', 'crashed', null)).toMatchObject({
      state: 'failed',
      reason: 'the instance is crashed before it was ready',
    });
    expect(progressOf('replenish', 'x', 'claimed', null).state).toBe('ready');
    expect(progressOf('drain', 'x', 'failed', 'destroy: railway 503')).toMatchObject({
      state: 'failed',
      reason: 'destroy: railway 503',
    });
  });
});
