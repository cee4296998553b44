// proxyClaim against a stubbed API: what the browser receives for a streamed success, an error
// answered before streaming, and an unreachable API.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { proxyClaim } from './claim-proxy';
import { SseParser } from './sse';

async function events(res: Response) {
  const p = new SseParser();
  return p
    .push(await res.text())
    .map((e) => ({ event: e.event, data: JSON.parse(e.data) as Record<string, unknown> }));
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('proxyClaim', () => {
  it('forwards steps and completes with the result and a QR, sending the key and operator auth', async () => {
    process.env.POOL_API_KEY = 'k-secret';
    const upstream =
      'event: step\ndata: {"step":"reserve","status":"active"}\n\n' +
      'event: step\ndata: {"step":"reserve","status":"ok","detail":"i1"}\n\n' +
      'event: complete\ndata: {"ok":true,"result":{"instanceId":"i1","agentName":"A","conversationId":null,"inviteUrl":null,"joined":false,"warm":true,"chatUrl":"http://x/chat"}}\n\n';
    const fetchMock = vi.fn(
      async () => new Response(upstream, { headers: { 'content-type': 'text/event-stream' } }),
    );
    vi.stubGlobal('fetch', fetchMock);
    const res = proxyClaim({ templateSlug: 'trip-planner' }, 'key-1', new AbortController().signal);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const ev = await events(res);
    expect(ev.map((e) => e.event)).toEqual(['step', 'step', 'complete']);
    expect(ev[1]?.data).toEqual({ step: 'reserve', status: 'ok' });
    expect(ev[2]?.data).toMatchObject({ ok: true, result: { instanceId: 'i1', chatUrl: 'http://x/chat' } });
    expect(String(ev[2]?.data.qr)).toMatch(/^data:image\/png;base64,/);
    const [, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    const headers = init.headers as Record<string, string>;
    expect(headers['idempotency-key']).toBe('key-1');
    expect(headers.authorization).toBe('Bearer k-secret');
    expect(JSON.parse(String(init.body))).toMatchObject({ templateSlug: 'trip-planner', maxWaitMs: 20_000 });
  });

  it('turns a JSON error (e.g. 503 with Retry-After) into a complete event', async () => {
    vi.stubGlobal('fetch', async () =>
      Response.json(
        { error: 'no idle instance', code: 'POOL_EMPTY' },
        { status: 503, headers: { 'retry-after': '7' } },
      ),
    );
    const ev = await events(proxyClaim({}, 'k', new AbortController().signal));
    expect(ev).toEqual([
      {
        event: 'complete',
        data: { ok: false, status: 503, code: 'POOL_EMPTY', error: 'no idle instance', retryAfter: 7 },
      },
    ]);
  });

  it('reports an unreachable API as a 502 the page can explain, without leaking details', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('connect ECONNREFUSED 127.0.0.1:3001');
    });
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const ev = await events(proxyClaim({}, 'k', new AbortController().signal));
    expect(ev[0]?.data).toMatchObject({ ok: false, status: 502, code: 'API_UNREACHABLE' });
    expect(JSON.stringify(ev)).not.toContain('ECONNREFUSED');
  });
});
