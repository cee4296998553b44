import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { bytesToHex, concatBytes, hexToBytes, utf8 } from './bytes.js';
import { InviteError } from './errors.js';

/**
 * The encrypted conversation token inside an invite (matches InviteConversationToken.swift):
 *   0x01 ‖ nonce(12) ‖ ChaCha20-Poly1305(plaintext) ‖ tag(16)
 *   key  = HKDF-SHA256(ikm = wallet private key, salt = "ConvosInviteV1", info = "inbox:" + inboxIdHex, 32)
 *   AAD  = UTF-8 of the creator's inbox id hex
 *   plaintext = 0x01 ‖ UUID(16)  |  0x02 ‖ len(1) ‖ utf8  |  0x02 ‖ 0x00 ‖ len(2, BE) ‖ utf8
 * Only the creator (who holds the wallet key) can read it: it tells the creator which of its groups an
 * incoming join request is for, without revealing the conversation id to anyone holding the invite.
 */

const TOKEN_VERSION = 0x01;
const NONCE_BYTES = 12;
const AEAD_TAG_BYTES = 16;
const SALT = utf8.encode('ConvosInviteV1');
const UUID_RE = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i;
const MAX_STRING_ID_BYTES = 0xffff;

function normalizeKey(walletPrivateKey: Uint8Array | string): Uint8Array {
  const key =
    typeof walletPrivateKey === 'string'
      ? hexToBytes(walletPrivateKey, 'wallet private key')
      : walletPrivateKey;
  if (key.length !== 32) throw new InviteError('bad_argument', 'wallet private key must be 32 bytes');
  return key;
}

function deriveKey(walletPrivateKey: Uint8Array, creatorInboxId: string): Uint8Array {
  return hkdf(sha256, walletPrivateKey, SALT, utf8.encode(`inbox:${creatorInboxId}`), 32);
}

export function packConversationId(conversationId: string): Uint8Array {
  const m = UUID_RE.exec(conversationId);
  if (m) return concatBytes(Uint8Array.of(0x01), hexToBytes(m.slice(1).join('')));
  const s = utf8.encode(conversationId);
  if (s.length === 0) throw new InviteError('bad_argument', 'conversation id is empty');
  if (s.length <= 255) return concatBytes(Uint8Array.of(0x02, s.length), s);
  if (s.length > MAX_STRING_ID_BYTES) throw new InviteError('bad_argument', 'conversation id is too long');
  return concatBytes(Uint8Array.of(0x02, 0x00, s.length >> 8, s.length & 0xff), s);
}

export function unpackConversationId(data: Uint8Array): string {
  const bad = (why: string) => new InviteError('bad_token', `conversation token plaintext ${why}`);
  if (data[0] === 0x01) {
    if (data.length !== 17) throw bad('has a UUID of the wrong length');
    const h = bytesToHex(data.subarray(1));
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  if (data[0] === 0x02) {
    let off = 2;
    let len = data[1] ?? -1;
    if (len === 0) {
      if (data.length < 4) throw bad('is truncated');
      len = ((data[2] as number) << 8) | (data[3] as number);
      off = 4;
    }
    if (len <= 0 || data.length !== off + len) throw bad('has a wrong string length');
    try {
      return utf8.decode(data.subarray(off));
    } catch {
      throw bad('is not valid UTF-8');
    }
  }
  throw bad(`has unknown form 0x${(data[0] ?? 0).toString(16)}`);
}

/**
 * @param nonce only for deterministic test vectors; production callers leave it out (random).
 */
export function encryptConversationToken(
  conversationId: string,
  creatorInboxId: string,
  walletPrivateKey: Uint8Array | string,
  nonce: Uint8Array = randomBytes(NONCE_BYTES),
): Uint8Array {
  if (nonce.length !== NONCE_BYTES)
    throw new InviteError('bad_argument', `nonce must be ${NONCE_BYTES} bytes`);
  const key = deriveKey(normalizeKey(walletPrivateKey), creatorInboxId);
  const sealed = chacha20poly1305(key, nonce, utf8.encode(creatorInboxId)).encrypt(
    packConversationId(conversationId),
  );
  return concatBytes(Uint8Array.of(TOKEN_VERSION), nonce, sealed);
}

export function decryptConversationToken(
  token: Uint8Array,
  creatorInboxId: string,
  walletPrivateKey: Uint8Array | string,
): string {
  if (token[0] !== TOKEN_VERSION) {
    throw new InviteError(
      'bad_token',
      `conversation token version ${token[0] ?? 'missing'} is not supported`,
    );
  }
  if (token.length < 1 + NONCE_BYTES + AEAD_TAG_BYTES + 2)
    throw new InviteError('bad_token', 'conversation token is truncated');
  const key = deriveKey(normalizeKey(walletPrivateKey), creatorInboxId);
  let plain: Uint8Array;
  try {
    plain = chacha20poly1305(key, token.subarray(1, 1 + NONCE_BYTES), utf8.encode(creatorInboxId)).decrypt(
      token.subarray(1 + NONCE_BYTES),
    );
  } catch (err) {
    // Wrong key, wrong inbox id or tampered bytes all look the same to an AEAD.
    throw new InviteError('bad_token', 'conversation token does not decrypt with this identity', {
      cause: err,
    });
  }
  return unpackConversationId(plain);
}
