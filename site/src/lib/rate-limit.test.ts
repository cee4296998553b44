import { describe, expect, it } from 'vitest';
import { ClaimRateLimiter } from './rate-limit';

describe('ClaimRateLimiter', () => {
  it('allows up to the limit of distinct keys per client per window', () => {
    const rl = new ClaimRateLimiter(2, 60_000);
    expect(rl.check('1.1.1.1', 'a', 0)).toBe(0);
    expect(rl.check('1.1.1.1', 'b', 1)).toBe(0);
    expect(rl.check('1.1.1.1', 'c', 2)).toBe(60);
    expect(rl.check('2.2.2.2', 'c', 2)).toBe(0);
  });

  it('does not charge retries of the same key', () => {
    const rl = new ClaimRateLimiter(1, 60_000);
    expect(rl.check('ip', 'k', 0)).toBe(0);
    expect(rl.check('ip', 'k', 10)).toBe(0);
    expect(rl.check('ip', 'other', 10)).toBeGreaterThan(0);
  });

  it('opens a new window after windowMs', () => {
    const rl = new ClaimRateLimiter(1, 1000);
    expect(rl.check('ip', 'a', 0)).toBe(0);
    expect(rl.check('ip', 'b', 500)).toBe(1);
    expect(rl.check('ip', 'b', 1000)).toBe(0);
  });
});
