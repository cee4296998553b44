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

describe('parseClaim', () => {
  it('accepts a template claim and trims the name', async () => {
    const p = await parseClaim(req({ templateSlug: 'trip-planner', agentName: ' Bob ' }));
    expect(p).toEqual({ ok: true, key: 'k-1', body: { templateSlug: 'trip-planner', agentName: 'Bob' } });
  });

  it('requires a well-formed Idempotency-Key', async () => {
    expect((await error(req({}, { 'idempotency-key': '' }))).body.code).toBe('BAD_IDEMPOTENCY_KEY');
    expect((await error(req({}, { 'idempotency-key': 'a b' }))).body.code).toBe('BAD_IDEMPOTENCY_KEY');
  });

  it('rejects bad input with a clear 4xx', async () => {
    expect(await error(req('{nope'))).toMatchObject({ status: 400, body: { code: 'BAD_JSON' } });
    expect(await error(req([]))).toMatchObject({ status: 400, body: { code: 'BAD_JSON' } });
    expect(await error(req({ templateSlug: 'Not A Slug' }))).toMatchObject({ status: 400, body: { code: 'BAD_TEMPLATE' } });
    expect(await error(req({ agentName: 'x'.repeat(65) }))).toMatchObject({ status: 400, body: { code: 'BAD_AGENT_NAME' } });
    expect(await error(req({ joinUrl: 'https://example.com/x' }))).toMatchObject({ status: 400, body: { code: 'BAD_INVITE' } });
    expect(await error(req({ maxWaitMs: 70_000 }))).toMatchObject({ status: 400, body: { code: 'BAD_WAIT' } });
    expect(await error(req({}, { 'content-type': 'text/plain' }))).toMatchObject({ status: 415 });
  });
});
