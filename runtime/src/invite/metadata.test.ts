import { describe, expect, it } from 'vitest';
import { base64urlDecode, base64urlEncode } from './bytes.js';
import { InviteError } from './errors.js';
import { decodeAppData, encodeAppData, generateInviteTag } from './metadata.js';
import { ProtoWriter } from './protobuf.js';

const INBOX = '0123456789abcdef'.repeat(4);

describe('group appData metadata', () => {
  it('encodes to fixed bytes', () => {
    expect(encodeAppData({ tag: 'AbCdEfGhIj', profiles: [{ inboxId: INBOX, name: 'Agent' }] })).toBe(
      'CgpBYkNkRWZHaElqEikKIAEjRWeJq83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vEgVBZ2VudA',
    );
  });

  it('round-trips tag, profiles and expiry, and compresses large metadata', () => {
    const m = {
      tag: 'Zz09Zz09Zz',
      profiles: Array.from({ length: 20 }, (_, i) => ({
        inboxId: INBOX,
        name: `member ${i}`,
        image: 'https://img/x.png',
      })),
      expiresAtUnix: 1_900_000_000,
    };
    const text = encodeAppData(m);
    expect(base64urlDecode(text)[0]).toBe(0x1f);
    expect(decodeAppData(text)).toEqual(m);
  });

  it('preserves fields it does not model (written by the Convos app) when rewritten', () => {
    const bytes = new ProtoWriter()
      .string(1, 'TagTagTag1')
      .bytes(4, Uint8Array.of(9, 9, 9))
      .string(6, '🎉')
      .finish();
    const m = decodeAppData(base64urlEncode(bytes));
    expect(m.tag).toBe('TagTagTag1');
    m.profiles.push({ inboxId: INBOX, name: 'Agent' });
    const again = decodeAppData(encodeAppData(m));
    expect(again.profiles).toEqual([{ inboxId: INBOX, name: 'Agent' }]);
    expect(again.unknownFields).toEqual(m.unknownFields);
    expect(encodeAppData(again)).toContain(
      base64urlEncode(new ProtoWriter().string(1, 'TagTagTag1').finish()).slice(0, 8),
    );
  });

  it('reads empty and legacy JSON appData, rejects garbage', () => {
    expect(decodeAppData('')).toEqual({ tag: '', profiles: [] });
    expect(decodeAppData('{"tag":"abc","expiresAtUnix":5}')).toEqual({
      tag: 'abc',
      profiles: [],
      expiresAtUnix: 5,
    });
    expect(() => decodeAppData('{not json')).toThrow(InviteError);
    expect(() => decodeAppData('!!!')).toThrow(InviteError);
    expect(() => decodeAppData(base64urlEncode(Uint8Array.of(0x0a, 0x20, 1)))).toThrow(/truncated/);
  });

  it('generates 10-character alphanumeric tags that differ', () => {
    const tags = new Set(Array.from({ length: 200 }, generateInviteTag));
    expect(tags.size).toBe(200);
    for (const t of tags) expect(t).toMatch(/^[A-Za-z0-9]{10}$/);
  });
});
