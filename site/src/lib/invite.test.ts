import { describe, expect, it } from 'vitest';
import { checkInviteUrl } from './invite';

const slug = 'CgAbcdefghijklmnopqrstuvwxyz0123456789_-*x';

describe('checkInviteUrl', () => {
  it.each([
    `https://popup.convos.org/v2?i=${slug}`,
    `https://dev.convos.org/v2?i=${slug}`,
    `https://popup.convos.org/v2?code=${slug}`,
    `convos://join/${slug}`,
    slug,
    `  https://dev.convos.org/v2?i=${slug}  `,
  ])('accepts %s', (input) => {
    expect(checkInviteUrl(input).ok).toBe(true);
  });

  it.each([
    ['', /Paste/],
    ['hello world', /does not look like/],
    [`http://popup.convos.org/v2?i=${slug}`, /https:\/\/popup/],
    [`https://evil.example/v2?i=${slug}`, /https:\/\/popup/],
    ['https://popup.convos.org/v2', /no invite code/],
    ['https://popup.convos.org/v2?i=short', /no invite code/],
    ['convos://join/', /convos:\/\/join/],
    // `new URL` drops the line break and would have passed a link no Convos app makes.
    [`https://dev.con\nvos.org/v2?i=${slug}`, /no spaces or special characters/],
    [`https://dev.convos.org/v2?i=${slug}\u202E`, /no spaces or special characters/],
  ])('rejects %j', (input, reason) => {
    const r = checkInviteUrl(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });
});
