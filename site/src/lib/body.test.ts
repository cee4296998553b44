import { describe, expect, it } from 'vitest';
import { readBodyLimited, readFormLimited } from './body';

const post = (body: BodyInit | null, headers: Record<string, string> = {}) =>
  new Request('http://site/x', { method: 'POST', headers, body, duplex: 'half' } as RequestInit);

/** A body that never ends, counting what is pulled from it. */
function endless(chunk = 16 * 1024) {
  const state = { pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      state.pulled += chunk;
      c.enqueue(new Uint8Array(chunk));
    },
  });
  return { stream, state };
}

async function refusal(p: Promise<{ ok: boolean; response?: Response }>) {
  const r = await p;
  if (r.ok || !r.response) throw new Error('expected a refusal');
  return { status: r.response.status, connection: r.response.headers.get('connection'), body: (await r.response.json()) as { code: string } };
}

describe('readBodyLimited', () => {
  it('reads a body up to the cap', async () => {
    const r = await readBodyLimited(post('x'.repeat(100)), 100);
    expect(r.ok && r.value.byteLength).toBe(100);
  });

  it('refuses by Content-Length before reading anything', async () => {
    const { stream, state } = endless();
    const r = await refusal(readBodyLimited(post(stream, { 'content-length': '200000000' }), 1024));
    expect(r).toMatchObject({ status: 413, connection: 'close', body: { code: 'TOO_LARGE' } });
    expect(state.pulled).toBeLessThanOrEqual(64 * 1024); // at most what the stream pre-pulls on its own
  });

  it('stops reading a chunked body (or one with a lying Content-Length) just past the cap', async () => {
    for (const headers of [{}, { 'content-length': '10' }]) {
      const { stream, state } = endless();
      const r = await refusal(readBodyLimited(post(stream, headers), 64 * 1024));
      expect(r.status).toBe(413);
      expect(state.pulled).toBeLessThan(64 * 1024 + 3 * 16 * 1024);
    }
  });

  it('refuses a Content-Length that is not a number', async () => {
    expect((await refusal(readBodyLimited(post('x', { 'content-length': 'abc' }), 10))).status).toBe(400);
  });

  it('gives up on a body that stalls (408)', async () => {
    const stalled = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) });
    expect((await refusal(readBodyLimited(post(stalled), 10, 50))).status).toBe(408);
  });
});

describe('readFormLimited', () => {
  const form = (body: string, type = 'application/x-www-form-urlencoded') => post(body, { 'content-type': type });

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
    expect((await refusal(readFormLimited(post('a=b'))))).toMatchObject({ status: 415 });
    const fd = new FormData();
    fd.set('f', new Blob(['x']), 'f.txt');
    expect((await refusal(readFormLimited(new Request('http://site/x', { method: 'POST', body: fd }))))).toMatchObject({
      status: 400,
      body: { code: 'BAD_FORM' },
    });
    expect((await refusal(readFormLimited(form(`key=${'x'.repeat(5000)}`)))).status).toBe(413);
    for (const bad of ['key=a%00b', 'back=%2Fadmin%0D%0ALocation:x', 'csrf=%1B[2J', 'k%07=v']) {
      const r = await refusal(readFormLimited(form(bad)));
      expect(r, bad).toMatchObject({ status: 400, body: { code: 'BAD_FORM' } });
    }
    const named = await readFormLimited(form('count=1%00'));
    expect(!named.ok && ((await named.response.json()) as { error: string }).error).toMatch(/^Form field "count" contains a control character \(U\+0000/);
  });
});
