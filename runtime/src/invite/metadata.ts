import { randomBytes } from '@noble/hashes/utils.js';
import { base64urlDecode, base64urlEncode, bytesToHex, hexToBytes } from './bytes.js';
import { compressIfSmaller, decompress } from './compression.js';
import { InviteError } from './errors.js';
import { asBytes, asSfixed64, asString, ProtoWriter, readFields } from './protobuf.js';

/**
 * The Convos metadata stored in a group's appData (what the Convos app reads to show the group and
 * what the creator checks join requests against):
 *   base64url( [0x1F ‖ len ‖ zlib]? protobuf ConversationCustomMetadata {
 *     1 tag string; 2 profiles repeated { 1 inboxId bytes; 2 name; 3 image }; 3 expiresAtUnix sfixed64; … } )
 * Fields this module does not model (encrypted images, emoji, …) are preserved byte-for-byte on rewrite
 * so that updating the profile list never drops what the app wrote.
 */

export interface ConversationProfile {
  inboxId: string;
  name?: string;
  image?: string;
}

export interface ConversationMetadata {
  tag: string;
  profiles: ConversationProfile[];
  expiresAtUnix?: number;
  /** Raw fields we do not interpret, re-emitted unchanged. */
  unknownFields?: Uint8Array;
}

export const APP_DATA_LIMIT = 8 * 1024;
const TAG_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const TAG_LENGTH = 10;

/** A fresh invite tag: 10 random [A-Za-z0-9]. Rotating it invalidates every earlier invite. */
export function generateInviteTag(): string {
  let out = '';
  while (out.length < TAG_LENGTH) {
    for (const b of randomBytes(16)) {
      // 248 = 62 * 4: rejecting bytes above it keeps every character equally likely.
      if (b < 248 && out.length < TAG_LENGTH) out += TAG_ALPHABET[b % 62];
    }
  }
  return out;
}

function encodeProfile(p: ConversationProfile): Uint8Array {
  const w = new ProtoWriter().bytes(1, hexToBytes(p.inboxId, 'profile inbox id'));
  if (p.name !== undefined) w.string(2, p.name);
  if (p.image !== undefined) w.string(3, p.image);
  return w.finish();
}

function decodeProfile(data: Uint8Array): ConversationProfile {
  const what = 'conversation profile';
  const p: ConversationProfile = { inboxId: '' };
  for (const f of readFields(data, what)) {
    if (f.field === 1) p.inboxId = bytesToHex(asBytes(f, what));
    else if (f.field === 2) p.name = asString(f, what);
    else if (f.field === 3) p.image = asString(f, what);
  }
  return p;
}

export function encodeAppData(m: ConversationMetadata): string {
  const w = new ProtoWriter().string(1, m.tag);
  for (const p of m.profiles) w.bytes(2, encodeProfile(p));
  if (m.expiresAtUnix !== undefined && m.expiresAtUnix !== 0) w.sfixed64(3, m.expiresAtUnix);
  const known = w.finish();
  const all = m.unknownFields?.length ? new Uint8Array([...known, ...m.unknownFields]) : known;
  const text = base64urlEncode(compressIfSmaller(all));
  if (text.length > APP_DATA_LIMIT)
    throw new InviteError('bad_argument', `group metadata exceeds ${APP_DATA_LIMIT} bytes`);
  return text;
}

/** Decodes appData; empty appData is "no metadata" (tag ""). Malformed appData throws. */
export function decodeAppData(appData: string): ConversationMetadata {
  if (appData.length === 0) return { tag: '', profiles: [] };
  // Early Convos builds stored `{"tag": …}` JSON.
  if (appData.startsWith('{')) {
    try {
      const j = JSON.parse(appData) as { tag?: unknown; expiresAtUnix?: unknown };
      return {
        tag: typeof j.tag === 'string' ? j.tag : '',
        profiles: [],
        ...(typeof j.expiresAtUnix === 'number' ? { expiresAtUnix: j.expiresAtUnix } : {}),
      };
    } catch (err) {
      throw new InviteError('bad_protobuf', 'group metadata is neither JSON nor protobuf', { cause: err });
    }
  }
  const what = 'group metadata';
  const { bytes } = decompress(base64urlDecode(appData));
  const out: ConversationMetadata = { tag: '', profiles: [] };
  const unknown = new ProtoWriter();
  let hasUnknown = false;
  for (const f of readFields(bytes, what)) {
    if (f.field === 1) out.tag = asString(f, what);
    else if (f.field === 2) out.profiles.push(decodeProfile(asBytes(f, what)));
    else if (f.field === 3) {
      const v = asSfixed64(f, what);
      if (v !== 0) out.expiresAtUnix = v;
    } else {
      hasUnknown = true;
      unknown.raw(f);
    }
  }
  if (hasUnknown) out.unknownFields = unknown.finish();
  return out;
}
