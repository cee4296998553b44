import { describe, expect, it } from 'vitest';
import { LINGER_BYTES, readBodyLimited, readFormLimited } from './body';

const post = (body: BodyInit | null, headers: Record<string, string> = {}) =>
  new Request('http://site/x', { method: 'POST', headers, body, duplex: 'half' } as RequestInit);

/** A body that never ends, counting what is pulled from it; `cancelled` once the reader gives up on it. */
function endless(chunk = 16 * 1024) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      state.pulled += chunk;
      c.enqueue(new Uint8Array(chunk));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

const until = async (cond: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return cond();
};

async function refusal(p: Promise<{ ok: boolean; response?: Response }>) {
  const r = await p;
  if (r.ok || !r.response) throw new Error('expected a refusal');
  return { status: r.response.status, body: (await r.response.json()) as { code: string } };
}

describe('readBodyLimited', () => {
  it('reads a body up to the cap', async () => {
    const r = await readBodyLimited(post('x'.repeat(100)), 100);
    expect(r.ok && r.value.byteLength).toBe(100);
  });

  // After a refusal what still arrives is dropped for a moment (so the client can read its 413), then the body
  // is cancelled, which closes the connection: an endless body is never read to its end, nor kept.
  it('refuses by Content-Length before reading anything, then drops a bounded amount and closes', async () => {
    const { stream, state } = endless();
    const r = await refusal(readBodyLimited(post(stream, { 'content-length': '200000000' }), 1024));
    expect(r).toMatchObject({ status: 413, body: { code: 'TOO_LARGE' } });
    expect(await until(() => state.cancelled)).toBe(true);
    expect(state.pulled).toBeLessThanOrEqual(LINGER_BYTES + 64 * 1024);
  });

  it('stops reading a chunked body (or one with a lying Content-Length) past the cap, then closes', async () => {
    for (const headers of [{}, { 'content-length': '10' }]) {
      const { stream, state } = endless();
      const r = await refusal(readBodyLimited(post(stream, headers), 64 * 1024));
      expect(r.status).toBe(413);
      expect(await until(() => state.cancelled)).toBe(true);
      expect(state.pulled).toBeLessThanOrEqual(64 * 1024 + LINGER_BYTES + 64 * 1024);
    }
  });

  it('refuses a Content-Length that is not a number', async () => {
    expect((await refusal(readBodyLimited(post('x', { 'content-length': 'abc' }), 10))).status).toBe(400);
  });

  it('gives up on a body that stalls (408)', async () => {
    let cancelled = false;
    const stalled = new ReadableStream<Uint8Array>({
      pull: () => new Promise(() => {}),
      cancel: () => {
        cancelled = true;
      },
    });
    expect((await refusal(readBodyLimited(post(stalled), 10, 50))).status).toBe(408);
    expect(await until(() => cancelled)).toBe(true);
  });
});

describe('readFormLimited', () => {
  const form = (body: string, type = 'application/x-www-form-urlencoded') =>
    post(body, { 'content-type': type });

  it('reads urlencoded and multipart forms', async () => {
    const a = await readFormLimited(form('action=replenish&count=2&csrf=t'));
    expect(a.ok && Object.fromEntries(a.value)).toEqual({ action: 'replenish', count: '2', csrf: 't' });
    const fd = new FormData();
    fd.set('action', 'reconcile');
    const b = await readFormLimited(new Request('http://site/x', { method: 'POST', body: fd }));
    expect(b.ok && b.value.get('action')).toBe('reconcile');
  });

  it('refuses other content types (415), files, oversized forms (413) and control characters (400 naming the field)', async () => {
    expect((await refusal(readFormLimited(form('{}', 'application/json')))).status).toBe(415);
    expect(await refusal(readFormLimited(post('a=b')))).toMatchObject({ status: 415 });
    const fd = new FormData();
    fd.set('f', new Blob(['x']), 'f.txt');
    expect(
      await refusal(readFormLimited(new Request('http://site/x', { method: 'POST', body: fd }))),
    ).toMatchObject({
      status: 400,
      body: { code: 'BAD_FORM' },
    });
    expect((await refusal(readFormLimited(form(`key=${'x'.repeat(5000)}`)))).status).toBe(413);
    for (const bad of ['key=a%00b', 'back=%2Fadmin%0D%0ALocation:x', 'csrf=%1B[2J', 'k%07=v']) {
      const r = await refusal(readFormLimited(form(bad)));
      expect(r, bad).toMatchObject({ status: 400, body: { code: 'BAD_FORM' } });
    }
    const named = await readFormLimited(form('count=1%00'));
    expect(!named.ok && ((await named.response.json()) as { error: string }).error).toMatch(
      /^Form field "count" contains a control character \(U\+0000/,
    );
  });
});
