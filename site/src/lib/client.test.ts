import { describe, expect, it } from 'vitest';
import { clientAddress, clientId, clientKey } from './client';

const req = (xff?: string | string[]) => {
  const headers = new Headers();
  for (const v of xff === undefined ? [] : Array.isArray(xff) ? xff : [xff])
    headers.append('x-forwarded-for', v);
  return new Request('http://site/api/claim', { headers });
};
const SOCKET = '10.0.0.9';

describe('clientAddress', () => {
  it('with 0 trusted hops, is the socket address whatever X-Forwarded-For says', () => {
    expect(clientAddress(req(), SOCKET, 0)).toBe(SOCKET);
    expect(clientAddress(req('1.2.3.4'), SOCKET, 0)).toBe(SOCKET);
    expect(clientAddress(req('1.2.3.4, 5.6.7.8'), SOCKET, 0)).toBe(SOCKET);
  });

  it('with 1 hop, is the entry our proxy appended (the right end), never the spoofable left end', () => {
    // What the visitor sent ("6.6.6.6") comes first; our proxy appends the address it saw.
    expect(clientAddress(req('203.0.113.7'), SOCKET, 1)).toBe('203.0.113.7');
    expect(clientAddress(req('6.6.6.6, 203.0.113.7'), SOCKET, 1)).toBe('203.0.113.7');
    expect(clientAddress(req('6.6.6.6, 7.7.7.7, 8.8.8.8, 203.0.113.7'), SOCKET, 1)).toBe('203.0.113.7');
    // Several header lines are one list, in order.
    expect(clientAddress(req(['6.6.6.6', '203.0.113.7']), SOCKET, 1)).toBe('203.0.113.7');
  });

  it('with 2 hops (CDN + load balancer), is the second entry from the right', () => {
    // visitor → CDN (appends the visitor) → load balancer (appends the CDN) → site
    expect(clientAddress(req('6.6.6.6, 203.0.113.7, 198.51.100.2'), SOCKET, 2)).toBe('203.0.113.7');
    expect(clientAddress(req('203.0.113.7, 198.51.100.2'), SOCKET, 2)).toBe('203.0.113.7');
    // Shorter than the hops: every entry was written by a trusted proxy; the leftmost is the farthest one.
    expect(clientAddress(req('198.51.100.2'), SOCKET, 2)).toBe('198.51.100.2');
  });

  it('falls back to the socket address when the trusted entry is missing or not an address', () => {
    expect(clientAddress(req(), SOCKET, 1)).toBe(SOCKET);
    expect(clientAddress(req(''), SOCKET, 1)).toBe(SOCKET);
    expect(clientAddress(req('1.2.3.4, not-an-ip'), SOCKET, 1)).toBe(SOCKET);
    expect(clientAddress(req('1.2.3.4, '), SOCKET, 1)).toBe(SOCKET);
    expect(clientAddress(req('1.2.3.4,\t'), SOCKET, 1)).toBe(SOCKET);
    expect(clientAddress(req('1.2.3.4, 999.1.1.1'), SOCKET, 1)).toBe(SOCKET);
  });

  it('accepts IPv6 and addresses with a port', () => {
    expect(clientAddress(req('6.6.6.6, 2001:db8::1'), SOCKET, 1)).toBe('2001:db8::1');
    expect(clientAddress(req('6.6.6.6, [2001:db8::1]:443'), SOCKET, 1)).toBe('2001:db8::1');
    expect(clientAddress(req('6.6.6.6, 203.0.113.7:5555'), SOCKET, 1)).toBe('203.0.113.7');
  });

  it('a visitor cannot pick their rate-limit bucket by sending X-Forwarded-For', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++)
      seen.add(clientKey(clientAddress(req(`10.1.${i}.1, 203.0.113.7`), SOCKET, 1)));
    for (let i = 0; i < 50; i++) seen.add(clientKey(clientAddress(req(`10.2.${i}.1`), SOCKET, 0)));
    expect([...seen].sort()).toEqual([SOCKET, '203.0.113.7'].sort());
  });
});

describe('clientKey', () => {
  it('is the IPv4 address (also IPv4-mapped), or the /64 of an IPv6 address', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002::9')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('2001:db8:1:3::1')).not.toBe(clientKey('2001:db8:1:2::1'));
  });
});

describe('clientId', () => {
  it('is opaque (site- + 32 hex), stable per visitor and salt, and differs between visitors and salts', () => {
    const a = clientId('203.0.113.7', 'salt-salt-salt-salt');
    expect(a).toMatch(/^site-[0-9a-f]{32}$/);
    expect(a).not.toContain('203');
    expect(clientId('203.0.113.7', 'salt-salt-salt-salt')).toBe(a);
    expect(clientId('203.0.113.8', 'salt-salt-salt-salt')).not.toBe(a);
    expect(clientId('203.0.113.7', 'other-salt-other-salt')).not.toBe(a);
    // Without a configured salt: a random salt of this process, still stable within it.
    expect(clientId('203.0.113.7', undefined)).toBe(clientId('203.0.113.7', undefined));
    expect(clientId('203.0.113.7', undefined)).not.toBe(a);
  });
});
