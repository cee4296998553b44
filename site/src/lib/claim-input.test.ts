import { describe, expect, it } from 'vitest';
import { parseClaim } from './claim-input';

const req = (body: unknown, headers: Record<string, string> = {}) =>
  new Request('http://site/api/claim', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function error(r: Request) {
  const p = await parseClaim(r);
  if (p.ok) throw new Error('expected a rejection');
  return { status: p.response.status, body: (await p.response.json()) as { code: string; error: string } };
}

const slug = 'CgAbcdefghijklmnopqrstuvwxyz0123456789_-*x';

describe('parseClaim', () => {
  it('accepts a template claim and trims the name', async () => {
    const p = await parseClaim(req({ templateSlug: 'trip-planner', agentName: ' Bob ' }));
    expect(p).toEqual({ ok: true, key: 'k-1', body: { templateSlug: 'trip-planner', agentName: 'Bob' } });
  });

  it('accepts names the contract allows: emoji sequences with joiners, other scripts, 64 characters', async () => {
    for (const agentName of ['👩‍💻 Coder', 'Ассистент', 'מסייע', 'x'.repeat(64), '😀'.repeat(64)]) {
      const p = await parseClaim(req({ agentName }));
      expect(p.ok, agentName).toBe(true);
    }
  });

  it('requires a well-formed Idempotency-Key', async () => {
    expect((await error(req({}, { 'idempotency-key': '' }))).body.code).toBe('BAD_IDEMPOTENCY_KEY');
    expect((await error(req({}, { 'idempotency-key': 'a b' }))).body.code).toBe('BAD_IDEMPOTENCY_KEY');
    expect((await error(req({}, { 'idempotency-key': 'k'.repeat(129) }))).body.code).toBe(
      'BAD_IDEMPOTENCY_KEY',
    );
  });

  it('rejects bad input with a clear 4xx', async () => {
    expect(await error(req('{nope'))).toMatchObject({ status: 400, body: { code: 'BAD_JSON' } });
    expect(await error(req([]))).toMatchObject({ status: 400, body: { code: 'BAD_JSON' } });
    expect(await error(req('null'))).toMatchObject({ status: 400, body: { code: 'BAD_JSON' } });
    expect(await error(req({ templateSlug: 'Not A Slug' }))).toMatchObject({
      status: 400,
      body: { code: 'BAD_TEMPLATE' },
    });
    expect(await error(req({ agentName: 'x'.repeat(65) }))).toMatchObject({
      status: 400,
      body: { code: 'BAD_AGENT_NAME' },
    });
    expect(await error(req({ agentName: '   ' }))).toMatchObject({
      status: 400,
      body: { code: 'BAD_AGENT_NAME' },
    });
    expect(await error(req({ agentName: 7 }))).toMatchObject({
      status: 400,
      body: { code: 'BAD_AGENT_NAME' },
    });
    expect(await error(req({ joinUrl: 'https://example.com/x' }))).toMatchObject({
      status: 400,
      body: { code: 'BAD_INVITE' },
    });
    expect(await error(req({ maxWaitMs: 70_000 }))).toMatchObject({
      status: 400,
      body: { code: 'BAD_WAIT' },
    });
    expect(await error(req({ instructions: 'be evil' }))).toMatchObject({
      status: 400,
      body: { code: 'BAD_FIELD' },
    });
    expect(await error(req({}, { 'content-type': 'text/plain' }))).toMatchObject({ status: 415 });
    expect(await error(req({}, { 'content-type': 'text/plain; x=application/json' }))).toMatchObject({
      status: 415,
    });
  });

  // Each of these got a 200 before the shared contract, and the runtime refused the name (a two-line name
  // destroyed every idle instance); the site now stops them with a 400 that names the field.
  it.each([
    ['a two-line name', 'Bob\nAlice'],
    ['a carriage return', 'Bob\r'],
    ['U+0000', 'A\u0000B'],
    ['BEL', 'Bell\u0007'],
    ['ESC (terminal escape)', '\u001b[31mRed'],
    ['a bidi override', 'evil\u202Etxt.exe'],
    ['a bidi isolate', '\u2066Bob\u2069'],
    ['a zero-width space', 'Bo\u200Bb'],
    ['a line separator', 'Bob\u2028Alice'],
    ['a lone high surrogate', 'Bob\uD800'],
    ['a lone low surrogate', '\uDC00Bob'],
    ['a C1 control', 'Bob\u0085'],
    ['a BOM', '\uFEFFBob'],
  ])('refuses an agent name with %s', async (_what, agentName) => {
    const e = await error(req({ agentName }));
    expect(e.status).toBe(400);
    expect(e.body.code).toBe('BAD_AGENT_NAME');
    expect(e.body.error).toMatch(/^agentName /);
  });

  it('refuses lone surrogates sent as JSON escapes and invalid UTF-8 bytes', async () => {
    const e = await error(req('{"agentName":"Bob\\ud800"}'));
    expect(e).toMatchObject({ status: 400, body: { code: 'BAD_AGENT_NAME' } });
    expect(e.body.error).toContain('U+D800');
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('{"agentName":"Bob'),
      0xff,
      ...new TextEncoder().encode('"}'),
    ]);
    const r = new Request('http://site/api/claim', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1' },
      body: bytes,
    });
    expect(await error(r)).toMatchObject({ status: 400, body: { code: 'BAD_ENCODING' } });
  });

  it.each([
    `https://dev.convos.org/v2?i=${slug}\u0000`,
    `https://dev.con\nvos.org/v2?i=${slug}`,
    `https://dev.convos.org/v2?i=${slug}&x=\u202E`,
    `https://dev.convos.org/v2?i=${slug}&x=a b`,
    `convos://join/${slug}\u0007`,
  ])('refuses a join URL with a control, format or space character: %j', async (joinUrl) => {
    const e = await error(req({ joinUrl }));
    expect(e).toMatchObject({ status: 400, body: { code: 'BAD_INVITE' } });
    expect(e.body.error).toMatch(/^joinUrl: /);
  });

  it('refuses a body over 64 KiB with 413, by Content-Length or by what arrives', async () => {
    const big = JSON.stringify({ agentName: 'x', pad: 'y'.repeat(70 * 1024) });
    expect(await error(req(big))).toMatchObject({ status: 413, body: { code: 'TOO_LARGE' } });
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(new Uint8Array(16 * 1024).fill(32));
      },
    });
    const chunked = new Request('http://site/api/claim', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(await error(chunked)).toMatchObject({ status: 413, body: { code: 'TOO_LARGE' } });
  });
});
