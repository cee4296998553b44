import { randomBytes } from 'node:crypto';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { base64urlDecode, base64urlEncode, bytesToHex, concatBytes, hexToBytes } from './bytes.js';
import { InviteError, type InviteErrorCode } from './errors.js';
import {
  createInvite,
  decryptConversationToken,
  encodeSlug,
  inviteMatchesEnv,
  parseInviteUrl,
  publicKeyToAddress,
  verifyInvite,
  walletPublicKey,
} from './index.js';
import { ProtoWriter } from './protobuf.js';
import { signPayload } from './signature.js';

const KEY = `0x${'11'.repeat(32)}`;
// The well-known Ethereum address of private key 0x1111…11 (an independent check of our keccak/ecdsa wiring).
const KEY_ADDRESS = '0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a';
const INBOX = '0123456789abcdef'.repeat(4);
const NONCE = Uint8Array.from({ length: 12 }, (_, i) => i);
const CONV = 'd3b1f0c2a4e5f6a7b8c9d0e1f2a3b4c5';
const EXPIRES = new Date('2030-01-01T00:00:00Z');
const BEFORE = new Date('2029-12-31T23:59:59Z');

const VECTOR = {
  payload:
    '0a3f01000102030405060708090a0b8dbeb16c37fc68285fc1f65373758db52c2f9df7c5fe33080e9cc5c5979e909aa130f10eb28c35b9bfafa50ed9bc1f41d80c' +
    '12200123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef1a0a4162436445664768496a4180d8db7000000000',
  signature:
    '149bc7a171a90c6f5ab90f10b624b1b1cabfc409f12401eec0c90946ca88ff7d01207fcd011858a71b42f324e8f09ed1efc1bc8ca3b6c51cacc6d89e3da6379c00',
  slug: 'CngKPwEAAQIDBAUGBwgJCguNvrFsN_xoKF_B9lNzdY21LC-d98X-MwgOnMXFl56QmqEw8Q6yjDW5v6-lDtm8H0HYDBIgASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8aCkFiQ2RFZkdoSWpBgNjbcAAAAAASQRSbx6FxqQxvWrkPELYksbHKv8QJ8SQB7sDJCUbKiP99ASB_zQEYWKcbQvMk6PCe0e_BvIyjtsUcrMbYnj2mN5wA',
};

function vectorInvite() {
  return createInvite({
    conversationId: CONV,
    creatorInboxId: INBOX,
    walletPrivateKey: KEY,
    tag: 'AbCdEfGhIj',
    env: 'production',
    tokenNonce: NONCE,
    compress: false,
    expiresAt: EXPIRES,
  });
}

function expectCode(fn: () => unknown, code: InviteErrorCode, message?: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InviteError);
    expect((err as InviteError).code).toBe(code);
    if (message) expect((err as InviteError).message).toMatch(message);
    return;
  }
  throw new Error(`expected InviteError ${code}`);
}

const signRaw = (payload: Uint8Array) => signPayload(payload, KEY);

describe('createInvite (fixed vector)', () => {
  it('emits exact payload, signature and slug bytes', () => {
    const c = vectorInvite();
    expect(bytesToHex(c.payloadBytes)).toBe(VECTOR.payload);
    expect(bytesToHex(c.signature)).toBe(VECTOR.signature);
    expect(c.slug).toBe(VECTOR.slug);
    expect(c.url).toBe(`https://popup.convos.org/v2?i=${VECTOR.slug}`);
  });

  it('signs with the wallet key whose address is known', () => {
    expect(publicKeyToAddress(walletPublicKey(KEY))).toBe(KEY_ADDRESS);
    const v = verifyInvite(parseInviteUrl(VECTOR.slug), { now: BEFORE });
    expect(v.signerAddress).toBe(KEY_ADDRESS);
  });

  it('uses dev.convos.org for dev and local networks', () => {
    for (const env of ['dev', 'local'] as const) {
      const c = createInvite({
        conversationId: CONV,
        creatorInboxId: INBOX,
        walletPrivateKey: KEY,
        tag: 'T',
        env,
      });
      expect(c.url.startsWith('https://dev.convos.org/v2?i=')).toBe(true);
    }
  });

  it('compresses large invites into the 0x1F form and inserts * every 300 characters', () => {
    const c = createInvite({
      conversationId: CONV,
      creatorInboxId: INBOX,
      walletPrivateKey: KEY,
      tag: 'AbCdEfGhIj',
      env: 'dev',
      name: 'Team',
      description: 'a long and repetitive description '.repeat(40),
    });
    const parts = c.slug.split('*');
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.slice(0, -1).every((p) => p.length === 300)).toBe(true);
    const raw = base64urlDecode(parts.join(''));
    expect(raw[0]).toBe(0x1f);
    const p = parseInviteUrl(c.url);
    expect(p.compression).toBe('marker');
    expect(p.payload.description).toBe('a long and repetitive description '.repeat(40));
  });

  it('leaves small invites uncompressed (starting with 0x0A)', () => {
    // A realistic (random, incompressible) inbox id: the repetitive INBOX would compress.
    const inbox = bytesToHex(randomBytes(32));
    const c = createInvite({
      conversationId: 'g',
      creatorInboxId: inbox,
      walletPrivateKey: KEY,
      tag: 'T',
      env: 'dev',
    });
    expect(base64urlDecode(c.slug)[0]).toBe(0x0a);
    expect(parseInviteUrl(c.slug).compression).toBe('none');
  });

  it('rejects bad arguments', () => {
    const base = {
      conversationId: CONV,
      creatorInboxId: INBOX,
      walletPrivateKey: KEY,
      tag: 'T',
      env: 'dev' as const,
    };
    expectCode(() => createInvite({ ...base, tag: '' }), 'bad_argument');
    expectCode(() => createInvite({ ...base, creatorInboxId: 'abcd' }), 'bad_argument', /32 bytes/);
    expectCode(() => createInvite({ ...base, creatorInboxId: 'zz'.repeat(32) }), 'bad_argument', /hex/);
    expectCode(() => createInvite({ ...base, walletPrivateKey: `0x${'00'.repeat(32)}` }), 'bad_argument');
  });
});

describe('parseInviteUrl', () => {
  it('decodes every field of a full invite', () => {
    const c = createInvite({
      conversationId: CONV,
      creatorInboxId: INBOX,
      walletPrivateKey: KEY,
      tag: 'AbCdEfGhIj',
      env: 'dev',
      name: 'Trip',
      description: 'Plans',
      imageUrl: 'https://x/y.png',
      emoji: '🚀',
      expiresAt: EXPIRES,
      conversationExpiresAt: new Date('2031-01-01T00:00:00Z'),
      expiresAfterUse: true,
    });
    const p = parseInviteUrl(c.url);
    expect(p).toMatchObject({
      env: 'dev',
      tag: 'AbCdEfGhIj',
      creatorInboxId: INBOX,
      expiresAt: EXPIRES,
      conversationExpiresAt: new Date('2031-01-01T00:00:00Z'),
      payload: {
        name: 'Trip',
        description: 'Plans',
        imageUrl: 'https://x/y.png',
        emoji: '🚀',
        expiresAfterUse: true,
      },
    });
    expect(decryptConversationToken(p.payload.conversationToken, p.creatorInboxId, KEY)).toBe(CONV);
    expect(bytesToHex(p.payloadBytes)).toBe(bytesToHex(c.payloadBytes));
  });

  it('accepts every URL form and detects the environment', () => {
    const s = VECTOR.slug;
    const withSeps = `${s.slice(0, 100)}*${s.slice(100, 200)}**${s.slice(200)}`;
    const cases: Array<[string, 'dev' | 'production' | null]> = [
      [`https://popup.convos.org/v2?i=${s}`, 'production'],
      [`https://dev.convos.org/v2?i=${s}`, 'dev'],
      [`https://convos.org/v2?code=${s}`, 'production'],
      [`http://dev.convos.org/v2?foo=1&i=${withSeps}#x`, 'dev'],
      [`  https://popup.convos.org/v2?i=${withSeps}\n`, 'production'],
      [`convos://join/${s}`, null],
      [`convos://join/${withSeps}`, null],
      [`?code=${s}`, null],
      [`i=${s}`, null],
      [s, null],
      [withSeps, null],
    ];
    for (const [input, env] of cases) {
      const p = parseInviteUrl(input);
      expect(p.env, input).toBe(env);
      expect(p.slug).toBe(s);
      expect(p.tag).toBe('AbCdEfGhIj');
    }
  });

  it('accepts standard base64 (+ / =) re-encodings of the slug', () => {
    const bytes = base64urlDecode(VECTOR.slug);
    const std = Buffer.from(bytes).toString('base64');
    expect(parseInviteUrl(std).tag).toBe('AbCdEfGhIj');
    expect(parseInviteUrl(`https://popup.convos.org/v2?i=${encodeURIComponent(std)}`).tag).toBe('AbCdEfGhIj');
  });

  it('decodes the 0x1F form with a zlib body, with a raw deflate body, and the bare 0x78 zlib form', () => {
    const signed = base64urlDecode(VECTOR.slug);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, signed.length, false);
    const forms: Array<[Uint8Array, string]> = [
      [concatBytes(Uint8Array.of(0x1f), len, deflateSync(signed)), 'marker'],
      [concatBytes(Uint8Array.of(0x1f), len, deflateRawSync(signed)), 'marker'],
      [new Uint8Array(deflateSync(signed)), 'zlib'],
    ];
    for (const [bytes, form] of forms) {
      const p = parseInviteUrl(base64urlEncode(bytes));
      expect(p.compression).toBe(form);
      expect(bytesToHex(p.payloadBytes)).toBe(VECTOR.payload);
      expect(verifyInvite(p, { now: BEFORE }).signerAddress).toBe(KEY_ADDRESS);
    }
  });

  it('round-trips: create → parse → re-encode → parse', () => {
    const c = createInvite({
      conversationId: CONV,
      creatorInboxId: INBOX,
      walletPrivateKey: KEY,
      tag: 'Zz09Zz09Zz',
      env: 'production',
      name: 'n',
    });
    const p = parseInviteUrl(c.url);
    const again = parseInviteUrl(encodeSlug(p.payloadBytes, p.signature));
    expect(again.payload).toEqual(p.payload);
    expect(verifyInvite(again, { expectedSigner: { address: KEY_ADDRESS } }).signerAddress).toBe(KEY_ADDRESS);
  });

  it('rejects malformed input with typed errors and clear messages', () => {
    const signed = base64urlDecode(VECTOR.slug);
    const len = (n: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, n, false);
      return b;
    };
    expectCode(() => parseInviteUrl(''), 'empty');
    expectCode(() => parseInviteUrl('   '), 'empty');
    expectCode(() => parseInviteUrl('***'), 'empty');
    expectCode(
      () => parseInviteUrl('https://example.com/v2?i=abc'),
      'unsupported_url',
      /not a Convos invite host/,
    );
    expectCode(() => parseInviteUrl('https://popup.convos.org/v2'), 'unsupported_url', /no \?i=/);
    expectCode(() => parseInviteUrl('ftp://popup.convos.org/v2?i=abc'), 'unsupported_url', /scheme/);
    expectCode(() => parseInviteUrl('convos://open/abc'), 'unsupported_url', /convos:\/\/join/);
    expectCode(() => parseInviteUrl('https://[bad'), 'unsupported_url', /valid URL/);
    expectCode(() => parseInviteUrl('x'.repeat(20000)), 'unsupported_url', /too long/);
    expectCode(() => parseInviteUrl('not a slug!'), 'bad_encoding', /base64url/);
    expectCode(() => parseInviteUrl('abcde'), 'bad_encoding', /length/);
    expectCode(() => parseInviteUrl(base64urlEncode(Uint8Array.of(0x12, 0x00))), 'bad_protobuf', /0x0a/);
    expectCode(() => parseInviteUrl(base64urlEncode(signed.subarray(0, 50))), 'bad_protobuf', /truncated/);
    expectCode(
      () => parseInviteUrl(base64urlEncode(Uint8Array.of(0x1f, 0, 0))),
      'bad_compression',
      /truncated/,
    );
    expectCode(
      () =>
        parseInviteUrl(
          base64urlEncode(
            concatBytes(Uint8Array.of(0x1f), len(signed.length), Uint8Array.of(0xff, 0xff, 0xff)),
          ),
        ),
      'bad_compression',
      /inflate/,
    );
    expectCode(
      () =>
        parseInviteUrl(
          base64urlEncode(concatBytes(Uint8Array.of(0x1f), len(signed.length + 1), deflateSync(signed))),
        ),
      'bad_compression',
      /declares/,
    );
    expectCode(
      () =>
        parseInviteUrl(
          base64urlEncode(concatBytes(Uint8Array.of(0x1f), len(10_000_000), deflateSync(signed))),
        ),
      'bad_compression',
      /too large/,
    );
    // A zip bomb: a tiny body inflating to megabytes.
    const bomb = deflateSync(new Uint8Array(5_000_000));
    expectCode(() => parseInviteUrl(base64urlEncode(bomb)), 'bad_compression');
    expectCode(() => parseInviteUrl(base64urlEncode(Uint8Array.of(0x78, 0x9c, 1, 2, 3))), 'bad_compression');
  });

  it('rejects missing or malformed fields', () => {
    const token = hexToBytes(VECTOR.payload).subarray(2, 2 + 63);
    const inbox = hexToBytes(INBOX);
    const payload = (f: (w: ProtoWriter) => ProtoWriter) => f(new ProtoWriter()).finish();
    const slug = (p: Uint8Array, sig = signRaw(p)) => encodeSlug(p, sig, false);
    expectCode(
      () => parseInviteUrl(slug(payload((w) => w.bytes(2, inbox).string(3, 'T')))),
      'missing_field',
      /conversation token/,
    );
    expectCode(
      () => parseInviteUrl(slug(payload((w) => w.bytes(1, token).string(3, 'T')))),
      'missing_field',
      /creator inbox/,
    );
    expectCode(
      () => parseInviteUrl(slug(payload((w) => w.bytes(1, token).bytes(2, inbox)))),
      'missing_field',
      /tag/,
    );
    expectCode(
      () =>
        parseInviteUrl(
          slug(payload((w) => w.bytes(1, token).bytes(2, inbox.subarray(0, 20)).string(3, 'T'))),
        ),
      'bad_protobuf',
      /20 bytes/,
    );
    expectCode(
      () => parseInviteUrl(slug(payload((w) => w.bytes(1, token).bytes(2, inbox).bool(3, true)))),
      'bad_protobuf',
      /field 3/,
    );
    expectCode(
      () =>
        parseInviteUrl(
          slug(payload((w) => w.bytes(1, token).bytes(2, inbox).bytes(3, Uint8Array.of(0xff, 0xfe)))),
        ),
      'bad_protobuf',
      /UTF-8/,
    );
    expectCode(
      () =>
        parseInviteUrl(
          slug(
            payload((w) => w.bytes(1, token).bytes(2, inbox).string(3, 'T')),
            new Uint8Array(64),
          ),
        ),
      'bad_signature',
      /64 bytes/,
    );
    expectCode(
      () => parseInviteUrl(encodeSlug(new Uint8Array(), new Uint8Array(65), false)),
      'missing_field',
      /payload/,
    );
    expectCode(
      () =>
        parseInviteUrl(
          base64urlEncode(
            new ProtoWriter()
              .bytes(
                1,
                payload((w) => w.bytes(1, token).bytes(2, inbox).string(3, 'T')),
              )
              .finish(),
          ),
        ),
      'missing_field',
      /signature/,
    );
    // Unknown fields are skipped (forward compatibility) and 0 expiries mean "unset".
    const extra = payload((w) =>
      w.bytes(1, token).bytes(2, inbox).string(3, 'T').sfixed64(8, 0).string(99, 'future'),
    );
    const p = parseInviteUrl(slug(extra));
    expect(p.expiresAt).toBeUndefined();
    expect(p.tag).toBe('T');
  });
});

describe('verifyInvite', () => {
  const parsed = () => parseInviteUrl(VECTOR.slug);

  it('accepts the right signer by key, public key, address and inbox id', () => {
    const now = BEFORE;
    expect(verifyInvite(parsed(), { now, expectedSigner: { walletPrivateKey: KEY } }).signerAddress).toBe(
      KEY_ADDRESS,
    );
    expect(
      verifyInvite(parsed(), { now, expectedSigner: { publicKey: walletPublicKey(KEY) } }).signerAddress,
    ).toBe(KEY_ADDRESS);
    expect(
      verifyInvite(parsed(), {
        now,
        expectedSigner: { address: KEY_ADDRESS.toUpperCase().replace('0X', '0x') },
      }).signerAddress,
    ).toBe(KEY_ADDRESS);
    expect(verifyInvite(parsed(), { now, expectedCreatorInboxId: INBOX.toUpperCase() }).signerAddress).toBe(
      KEY_ADDRESS,
    );
  });

  it('rejects another signer, another inbox, expiry and forged signatures', () => {
    const now = BEFORE;
    expectCode(
      () => verifyInvite(parsed(), { now, expectedSigner: { walletPrivateKey: `0x${'22'.repeat(32)}` } }),
      'wrong_signer',
    );
    expectCode(
      () => verifyInvite(parsed(), { now, expectedCreatorInboxId: 'ff'.repeat(32) }),
      'wrong_signer',
      /inbox/,
    );
    expectCode(() => verifyInvite(parsed(), { now: EXPIRES }), 'expired', /2030-01-01/);

    // Tampered payload: the signature recovers someone else.
    const p = parsed();
    const tampered = { ...p, payloadBytes: p.payloadBytes.slice() };
    const last = tampered.payloadBytes.length - 1;
    tampered.payloadBytes[last] = (tampered.payloadBytes[last] as number) ^ 1;
    expectCode(
      () => verifyInvite(tampered, { now, expectedSigner: { walletPrivateKey: KEY } }),
      'wrong_signer',
    );
    // Bad recovery id, zeroed signature.
    const badV = { ...p, signature: p.signature.slice() };
    badV.signature[64] = 5;
    expectCode(() => verifyInvite(badV, { now }), 'bad_signature', /recovery id/);
    expectCode(() => verifyInvite({ ...p, signature: new Uint8Array(65) }, { now }), 'bad_signature');
    // Ethereum-style v (27) is the same signature.
    const eth = { ...p, signature: p.signature.slice() };
    eth.signature[64] = (eth.signature[64] as number) + 27;
    expect(verifyInvite(eth, { now }).signerAddress).toBe(KEY_ADDRESS);
  });

  it('checks the conversation expiry too', () => {
    const c = createInvite({
      conversationId: CONV,
      creatorInboxId: INBOX,
      walletPrivateKey: KEY,
      tag: 'T',
      env: 'dev',
      conversationExpiresAt: EXPIRES,
    });
    expect(() => verifyInvite(parseInviteUrl(c.url), { now: BEFORE })).not.toThrow();
    expectCode(
      () => verifyInvite(parseInviteUrl(c.url), { now: new Date('2030-06-01T00:00:00Z') }),
      'expired',
      /conversation/,
    );
  });
});

describe('inviteMatchesEnv', () => {
  it('lets the pool reject an invite for another network', () => {
    expect(inviteMatchesEnv('production', 'production')).toBe(true);
    expect(inviteMatchesEnv('production', 'dev')).toBe(false);
    expect(inviteMatchesEnv('dev', 'production')).toBe(false);
    expect(inviteMatchesEnv('dev', 'dev')).toBe(true);
    expect(inviteMatchesEnv('dev', 'local')).toBe(true);
    expect(inviteMatchesEnv(null, 'production')).toBe(true);
  });
});
