import { bytesToHex, hexToBytes } from './bytes.js';
import { InviteError } from './errors.js';
import { asBool, asBytes, asSfixed64, asString, ProtoWriter, readFields } from './protobuf.js';

/**
 * The protobuf messages of a Convos invite (field numbers from convos-ios invite.proto):
 *   SignedInvite  { bytes payload = 1; bytes signature = 2; }
 *   InvitePayload { bytes conversationToken = 1; bytes creatorInboxId = 2; string tag = 3;
 *                   optional string name = 4; optional string description = 5; optional string imageURL = 6;
 *                   optional sfixed64 conversationExpiresAtUnix = 7; optional sfixed64 expiresAtUnix = 8;
 *                   bool expiresAfterUse = 9; optional string emoji = 10; }
 */

export interface InvitePayload {
  conversationToken: Uint8Array;
  /** Lowercase hex of the 32-byte inbox id (the wire carries the decoded bytes). */
  creatorInboxId: string;
  tag: string;
  name?: string;
  description?: string;
  imageUrl?: string;
  conversationExpiresAtUnix?: number;
  expiresAtUnix?: number;
  expiresAfterUse: boolean;
  emoji?: string;
}

export interface SignedInvite {
  payload: Uint8Array;
  signature: Uint8Array;
}

export const INBOX_ID_BYTES = 32;

export function inboxIdToBytes(inboxId: string): Uint8Array {
  const bytes = hexToBytes(inboxId, 'creator inbox id');
  if (bytes.length !== INBOX_ID_BYTES) {
    throw new InviteError(
      'bad_argument',
      `creator inbox id must be ${INBOX_ID_BYTES} bytes of hex, got ${bytes.length}`,
    );
  }
  return bytes;
}

export function encodeInvitePayload(p: InvitePayload): Uint8Array {
  const w = new ProtoWriter()
    .bytes(1, p.conversationToken)
    .bytes(2, inboxIdToBytes(p.creatorInboxId))
    .string(3, p.tag);
  if (p.name !== undefined) w.string(4, p.name);
  if (p.description !== undefined) w.string(5, p.description);
  if (p.imageUrl !== undefined) w.string(6, p.imageUrl);
  if (p.conversationExpiresAtUnix !== undefined) w.sfixed64(7, p.conversationExpiresAtUnix);
  if (p.expiresAtUnix !== undefined) w.sfixed64(8, p.expiresAtUnix);
  // proto3 scalar: the default (false) is not written, as Swift protobuf does.
  if (p.expiresAfterUse) w.bool(9, true);
  if (p.emoji !== undefined) w.string(10, p.emoji);
  return w.finish();
}

export function decodeInvitePayload(data: Uint8Array): InvitePayload {
  const what = 'invite payload';
  let token: Uint8Array | undefined;
  let inbox: Uint8Array | undefined;
  let tag: string | undefined;
  const out: Partial<InvitePayload> = { expiresAfterUse: false };
  // Last occurrence wins, as in every protobuf implementation; unknown fields are skipped.
  for (const f of readFields(data, what)) {
    switch (f.field) {
      case 1:
        token = asBytes(f, what);
        break;
      case 2:
        inbox = asBytes(f, what);
        break;
      case 3:
        tag = asString(f, what);
        break;
      case 4:
        out.name = asString(f, what);
        break;
      case 5:
        out.description = asString(f, what);
        break;
      case 6:
        out.imageUrl = asString(f, what);
        break;
      // 0 means "unset": older encoders wrote the proto default, and epoch 0 is never a real expiry.
      case 7: {
        const v = asSfixed64(f, what);
        if (v !== 0) out.conversationExpiresAtUnix = v;
        else delete out.conversationExpiresAtUnix;
        break;
      }
      case 8: {
        const v = asSfixed64(f, what);
        if (v !== 0) out.expiresAtUnix = v;
        else delete out.expiresAtUnix;
        break;
      }
      case 9:
        out.expiresAfterUse = asBool(f, what);
        break;
      case 10:
        out.emoji = asString(f, what);
        break;
      default:
        break;
    }
  }
  if (!token || token.length === 0)
    throw new InviteError('missing_field', 'invite has no conversation token');
  if (!inbox || inbox.length === 0) throw new InviteError('missing_field', 'invite has no creator inbox id');
  if (inbox.length !== INBOX_ID_BYTES) {
    throw new InviteError(
      'bad_protobuf',
      `invite creator inbox id is ${inbox.length} bytes, expected ${INBOX_ID_BYTES}`,
    );
  }
  if (!tag) throw new InviteError('missing_field', 'invite has no tag');
  return {
    ...out,
    conversationToken: token.slice(),
    creatorInboxId: bytesToHex(inbox),
    tag,
    expiresAfterUse: out.expiresAfterUse ?? false,
  };
}

export function encodeSignedInvite(s: SignedInvite): Uint8Array {
  return new ProtoWriter().bytes(1, s.payload).bytes(2, s.signature).finish();
}

export function decodeSignedInvite(data: Uint8Array): SignedInvite {
  const what = 'signed invite';
  let payload: Uint8Array | undefined;
  let signature: Uint8Array | undefined;
  for (const f of readFields(data, what)) {
    if (f.field === 1) payload = asBytes(f, what);
    else if (f.field === 2) signature = asBytes(f, what);
  }
  if (!payload || payload.length === 0) throw new InviteError('missing_field', 'invite has no payload');
  if (!signature || signature.length === 0) throw new InviteError('missing_field', 'invite has no signature');
  return { payload: payload.slice(), signature: signature.slice() };
}
