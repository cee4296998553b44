// The claim endpoints as Astro calls them, against a stubbed API: which visitor identity reaches the API.
import type { APIContext } from 'astro';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { POST as adminClaim } from '../pages/admin/claim';
import { POST as publicClaim } from '../pages/api/claim';
import { createSession, SESSION_COOKIE } from './sessions';

let sent: Array<Record<string, string>>;

beforeEach(() => {
  process.env.POOL_API_KEY = 'k-secret';
  process.env.SITE_CLAIM_RATE_LIMIT = '1000';
  sent = [];
  vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
    sent.push(init.headers as Record<string, string>);
    return Response.json({ error: 'no idle instance', code: 'POOL_EMPTY' }, { status: 503 });
  });
});
afterEach(() => {
  vi.unstubAllGlobals();
  delete process.env.SITE_TRUSTED_PROXY_HOPS;
  delete process.env.SITE_CLIENT_ID_SALT;
});

let n = 0;
const claimRequest = (headers: Record<string, string> = {}) =>
  new Request('http://site/api/claim', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `k-${++n}`, ...headers },
    body: JSON.stringify({ templateSlug: 'trip-planner' }),
  });

async function claimFrom(
  address: string,
  headers: Record<string, string> = {},
): Promise<Record<string, string>> {
  const res = await publicClaim({
    request: claimRequest(headers),
    clientAddress: address,
  } as unknown as APIContext);
  expect(res.status).toBe(200);
  await res.text(); // the proxied stream: the API call happens while it is read
  const h = sent.at(-1);
  if (!h) throw new Error('nothing was sent to the API');
  return h;
}

describe('the public claim tells the API which anonymous visitor it is for', () => {
  it('sends X-Client-Id (opaque, never the address) and X-Client-Anonymous: true, with the operator key', async () => {
    const h = await claimFrom('203.0.113.7');
    expect(h['x-client-id']).toMatch(/^site-[0-9a-f]{32}$/);
    expect(h['x-client-anonymous']).toBe('true');
    expect(h.authorization).toBe('Bearer k-secret');
    expect(JSON.stringify(h)).not.toContain('203.0.113.7');
  });

  it('the id is stable per visitor and differs between visitors', async () => {
    const a1 = (await claimFrom('203.0.113.7'))['x-client-id'];
    const a2 = (await claimFrom('203.0.113.7'))['x-client-id'];
    const b = (await claimFrom('203.0.113.8'))['x-client-id'];
    const v6a = (await claimFrom('2001:db8:1:2::1'))['x-client-id'];
    const v6b = (await claimFrom('2001:db8:1:2::ffff'))['x-client-id']; // same /64: same visitor
    const v6c = (await claimFrom('2001:db8:1:3::1'))['x-client-id'];
    expect(a2).toBe(a1);
    expect(b).not.toBe(a1);
    expect(v6b).toBe(v6a);
    expect(v6c).not.toBe(v6a);
  });

  it('a configured salt gives the same ids in every site process; a spoofed X-Forwarded-For changes nothing', async () => {
    process.env.SITE_CLIENT_ID_SALT = 'a-salt-shared-by-all-replicas';
    const a = (await claimFrom('203.0.113.7'))['x-client-id'];
    expect(a).toBe((await import('./client')).clientId('203.0.113.7', 'a-salt-shared-by-all-replicas'));
    // No trusted proxy: the header is the visitor's own words.
    expect((await claimFrom('203.0.113.7', { 'x-forwarded-for': '1.1.1.1' }))['x-client-id']).toBe(a);
    // Behind one trusted proxy: the proxy's entry (right end) is the visitor, whatever they put on the left.
    process.env.SITE_TRUSTED_PROXY_HOPS = '1';
    const viaProxy = (await claimFrom('10.0.0.2', { 'x-forwarded-for': '1.1.1.1, 203.0.113.7' }))[
      'x-client-id'
    ];
    expect(viaProxy).toBe(a);
    expect((await claimFrom('10.0.0.2', { 'x-forwarded-for': '9.9.9.9, 203.0.113.7' }))['x-client-id']).toBe(
      a,
    );
  });

  it('an operator claim from the console sends neither header', async () => {
    const session = createSession();
    const cookies = { get: (name: string) => (name === SESSION_COOKIE ? { value: session.id } : undefined) };
    const res = await adminClaim({
      request: claimRequest({ 'x-csrf-token': session.csrf }),
      cookies,
      clientAddress: '203.0.113.7',
    } as unknown as APIContext);
    expect(res.status).toBe(200);
    await res.text();
    const h = sent.at(-1) ?? {};
    expect(h.authorization).toBe('Bearer k-secret');
    expect(h['x-client-id']).toBeUndefined();
    expect(h['x-client-anonymous']).toBeUndefined();
  });
});
