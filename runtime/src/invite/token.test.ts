import { createDecipheriv, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from './bytes.js';
import { InviteError } from './errors.js';
import {
  decryptConversationToken,
  encryptConversationToken,
  packConversationId,
  unpackConversationId,
} from './token.js';

const KEY = `0x${'11'.repeat(32)}`;
const INBOX = '0123456789abcdef'.repeat(4);
const NONCE = Uint8Array.from({ length: 12 }, (_, i) => i);

/** An independent implementation (node:crypto) to check the noble-based one against. */
function nodeDecrypt(token: Uint8Array, inbox: string, key: string): Uint8Array {
  const k = Buffer.from(hkdfSync('sha256', hexToBytes(key), 'ConvosInviteV1', `inbox:${inbox}`, 32));
  const d = createDecipheriv('chacha20-poly1305', k, token.subarray(1, 13), { authTagLength: 16 });
  d.setAAD(Buffer.from(inbox, 'utf-8'), { plaintextLength: token.length - 29 });
  d.setAuthTag(token.subarray(token.length - 16));
  return new Uint8Array(Buffer.concat([d.update(token.subarray(13, token.length - 16)), d.final()]));
}

describe('conversation token', () => {
  it('encrypts a UUID to fixed bytes (fixed key, nonce)', () => {
    const t = encryptConversationToken('7f3c9a2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b', INBOX, KEY, NONCE);
    expect(bytesToHex(t)).toBe(
      '01000102030405060708090a0b8ee1e9c57bd6435653790c6b0b6ed4c916eddc3e4989e6db201f75cf3f86276b82',
    );
    expect(bytesToHex(nodeDecrypt(t, INBOX, KEY))).toBe('017f3c9a2e1b4d4e6f8a9b0c1d2e3f4a5b');
  });

  it('encrypts a string id to fixed bytes, and node:crypto decrypts it', () => {
    const t = encryptConversationToken('d3b1f0c2a4e5f6a7b8c9d0e1f2a3b4c5', INBOX, KEY, NONCE);
    expect(bytesToHex(t)).toBe(
      '01000102030405060708090a0b8dbeb16c37fc68285fc1f65373758db52c2f9df7c5fe33080e9cc5c5979e909aa130f10eb28c35b9bfafa50ed9bc1f41d80c',
    );
    const plain = nodeDecrypt(t, INBOX, KEY);
    expect(plain[0]).toBe(0x02);
    expect(plain[1]).toBe(32);
    expect(Buffer.from(plain.subarray(2)).toString()).toBe('d3b1f0c2a4e5f6a7b8c9d0e1f2a3b4c5');
  });

  it('round-trips UUIDs (lowercased), short and long strings', () => {
    for (const id of [
      '7F3C9A2E-1B4D-4E6F-8A9B-0C1D2E3F4A5B',
      'group-1',
      'é'.repeat(100),
      'x'.repeat(256),
      'y'.repeat(4000),
    ]) {
      const t = encryptConversationToken(id, INBOX, KEY);
      expect(decryptConversationToken(t, INBOX, KEY)).toBe(id.length === 36 ? id.toLowerCase() : id);
    }
  });

  it('uses the 3-byte length form above 255 bytes', () => {
    const packed = packConversationId('x'.repeat(300));
    expect(bytesToHex(packed.subarray(0, 4))).toBe('0200012c');
    expect(unpackConversationId(packed)).toBe('x'.repeat(300));
  });

  it('uses a fresh random nonce per token', () => {
    const a = encryptConversationToken('g', INBOX, KEY);
    const b = encryptConversationToken('g', INBOX, KEY);
    expect(bytesToHex(a.subarray(1, 13))).not.toBe(bytesToHex(b.subarray(1, 13)));
  });

  it('rejects the wrong key, the wrong inbox id (AAD) and tampering', () => {
    const t = encryptConversationToken('g', INBOX, KEY, NONCE);
    const other = `0x${'22'.repeat(32)}`;
    expect(() => decryptConversationToken(t, INBOX, other)).toThrow(/does not decrypt/);
    expect(() => decryptConversationToken(t, 'ff'.repeat(32), KEY)).toThrow(InviteError);
    const tampered = t.slice();
    tampered[14] = (tampered[14] ?? 0) ^ 1;
    expect(() => decryptConversationToken(tampered, INBOX, KEY)).toThrow(/does not decrypt/);
  });

  it('rejects unknown versions, truncation and bad plaintext forms', () => {
    const t = encryptConversationToken('g', INBOX, KEY, NONCE);
    const v2 = t.slice();
    v2[0] = 2;
    expect(() => decryptConversationToken(v2, INBOX, KEY)).toThrow(/version 2/);
    expect(() => decryptConversationToken(t.subarray(0, 20), INBOX, KEY)).toThrow(/truncated/);
    expect(() => decryptConversationToken(new Uint8Array(), INBOX, KEY)).toThrow(InviteError);
    expect(() => unpackConversationId(Uint8Array.of(0x03, 1, 0x41))).toThrow(/unknown form/);
    expect(() => unpackConversationId(Uint8Array.of(0x02, 5, 0x41))).toThrow(/length/);
    expect(() => unpackConversationId(Uint8Array.of(0x01, 1, 2))).toThrow(/UUID/);
    expect(() => encryptConversationToken('', INBOX, KEY)).toThrow(/empty/);
    expect(() => encryptConversationToken('g', INBOX, KEY, new Uint8Array(8))).toThrow(/nonce/);
    expect(() => encryptConversationToken('g', INBOX, '0x1234')).toThrow(/32 bytes/);
  });
});
