import { describe, expect, it } from 'vitest';
import { checkCsrf, cookieSecure, createSession, getSession, revokeSession, safeEqual } from './sessions';

describe('sessions', () => {
  it('creates, finds, expires and revokes sessions', () => {
    const s = createSession(1000);
    expect(getSession(s.id, 1001)).toBe(s);
    expect(getSession(s.id, s.expiresAt)).toBeUndefined();
    const t = createSession();
    revokeSession(t.id);
    expect(getSession(t.id)).toBeUndefined();
    expect(getSession(undefined)).toBeUndefined();
  });

  it('checks CSRF tokens in constant time', () => {
    const s = createSession();
    expect(checkCsrf(s, s.csrf)).toBe(true);
    expect(checkCsrf(s, `${s.csrf}x`)).toBe(false);
    expect(checkCsrf(s, '')).toBe(false);
    expect(checkCsrf(s, undefined)).toBe(false);
    expect(safeEqual('a', 'a')).toBe(true);
    expect(safeEqual('a', 'b')).toBe(false);
  });

  it('marks cookies Secure except on a local http origin', () => {
    expect(cookieSecure(new URL('http://localhost:4321/admin'))).toBe(false);
    expect(cookieSecure(new URL('http://127.0.0.1:4321/admin'))).toBe(false);
    expect(cookieSecure(new URL('http://agents.example.com/admin'))).toBe(true);
    expect(cookieSecure(new URL('https://localhost/admin'))).toBe(true);
  });
});
