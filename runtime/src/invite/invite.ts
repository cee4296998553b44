import { base64urlDecode, base64urlEncode, bytesEqual, bytesToHex, hexToBytes } from './bytes.js';
import { type CompressionForm, compressIfSmaller, decompress } from './compression.js';
import { InviteError } from './errors.js';
import {
  decodeInvitePayload,
  decodeSignedInvite,
  encodeInvitePayload,
  encodeSignedInvite,
  type InvitePayload,
} from './payload.js';
import {
  publicKeyToAddress,
  recoverSigner,
  SIGNATURE_BYTES,
  signPayload,
  walletPublicKey,
} from './signature.js';
import { encryptConversationToken } from './token.js';
import { extractSlug, type InviteEnv, insertSeparators, inviteUrlFor, type XmtpEnv } from './url.js';

/** Creating, parsing and verifying whole invites (the parts live in the sibling files). */

export interface ParsedInvite {
  /** The slug as found, `*` separators removed (what a join request carries). */
  slug: string;
  /** The network the URL names; null for a raw slug or convos:// link. */
  env: InviteEnv | null;
  compression: CompressionForm;
  payload: InvitePayload;
  /** The exact signed bytes (re-encoding could differ, and the signature covers these). */
  payloadBytes: Uint8Array;
  signature: Uint8Array;
  creatorInboxId: string;
  tag: string;
  expiresAt?: Date;
  conversationExpiresAt?: Date;
}

/**
 * Parses anything a person may paste (URL, ?code=, convos://join/, raw slug) into an invite.
 * Checks structure only; use verifyInvite for the signature and expiry.
 * @throws InviteError with a message fit to show to the person who pasted it.
 */
export function parseInviteUrl(input: string): ParsedInvite {
  const { slug, env } = extractSlug(input);
  if (slug.length === 0) throw new InviteError('empty', 'invite code is empty');
  const raw = base64urlDecode(slug);
  if (raw.length === 0) throw new InviteError('bad_encoding', 'invite code decodes to nothing');
  const { bytes, form } = decompress(raw);
  if (bytes[0] !== 0x0a) {
    throw new InviteError(
      'bad_protobuf',
      'invite code does not start with a signed invite (expected byte 0x0a)',
    );
  }
  const signed = decodeSignedInvite(bytes);
  if (signed.signature.length !== SIGNATURE_BYTES) {
    throw new InviteError(
      'bad_signature',
      `invite signature is ${signed.signature.length} bytes, expected ${SIGNATURE_BYTES}`,
    );
  }
  const payload = decodeInvitePayload(signed.payload);
  return {
    slug,
    env,
    compression: form,
    payload,
    payloadBytes: signed.payload,
    signature: signed.signature,
    creatorInboxId: payload.creatorInboxId,
    tag: payload.tag,
    ...(payload.expiresAtUnix !== undefined ? { expiresAt: new Date(payload.expiresAtUnix * 1000) } : {}),
    ...(payload.conversationExpiresAtUnix !== undefined
      ? { conversationExpiresAt: new Date(payload.conversationExpiresAtUnix * 1000) }
      : {}),
  };
}

export interface VerifyOptions {
  /** Who must have signed: a public key (33/65 bytes or hex), an 0x address, or the wallet key itself. */
  expectedSigner?:
    | { publicKey: Uint8Array | string }
    | { address: string }
    | { walletPrivateKey: Uint8Array | string };
  /** Checked against the invite's inbox id (creator side: our own inbox id). */
  expectedCreatorInboxId?: string;
  now?: Date;
}

export interface VerifiedInvite {
  signerPublicKey: Uint8Array;
  signerAddress: string;
}

function expectedAddress(s: NonNullable<VerifyOptions['expectedSigner']>): string {
  if ('address' in s) return s.address.toLowerCase();
  if ('walletPrivateKey' in s) return publicKeyToAddress(walletPublicKey(s.walletPrivateKey));
  const pk = typeof s.publicKey === 'string' ? hexToBytes(s.publicKey, 'public key') : s.publicKey;
  try {
    return publicKeyToAddress(pk);
  } catch (err) {
    throw new InviteError('bad_argument', 'expected public key is not a secp256k1 point', { cause: err });
  }
}

/**
 * Checks the signature (recovers the signer; optionally that it is the expected one), the creator
 * inbox id and both expiries.
 * @throws InviteError 'bad_signature' | 'wrong_signer' | 'expired'
 */
export function verifyInvite(invite: ParsedInvite, opts: VerifyOptions = {}): VerifiedInvite {
  const signerPublicKey = recoverSigner(invite.payloadBytes, invite.signature);
  const signerAddress = publicKeyToAddress(signerPublicKey);
  if (opts.expectedSigner && expectedAddress(opts.expectedSigner) !== signerAddress) {
    throw new InviteError('wrong_signer', 'invite was not signed by the expected creator');
  }
  if (
    opts.expectedCreatorInboxId !== undefined &&
    !bytesEqual(hexToBytes(opts.expectedCreatorInboxId, 'inbox id'), hexToBytes(invite.creatorInboxId))
  ) {
    throw new InviteError('wrong_signer', 'invite names a different creator inbox');
  }
  const now = (opts.now ?? new Date()).getTime();
  if (invite.expiresAt && invite.expiresAt.getTime() <= now) {
    throw new InviteError('expired', `invite expired at ${invite.expiresAt.toISOString()}`);
  }
  if (invite.conversationExpiresAt && invite.conversationExpiresAt.getTime() <= now) {
    throw new InviteError('expired', `conversation expired at ${invite.conversationExpiresAt.toISOString()}`);
  }
  return { signerPublicKey, signerAddress };
}

export interface CreateInviteOptions {
  conversationId: string;
  /** Hex inbox id of the creator (32 bytes). */
  creatorInboxId: string;
  /** The creator's wallet key: signs the invite and keys the conversation token. Never logged. */
  walletPrivateKey: Uint8Array | string;
  /** The group's current invite tag (from its appData). */
  tag: string;
  env: XmtpEnv;
  name?: string;
  description?: string;
  imageUrl?: string;
  emoji?: string;
  expiresAt?: Date;
  conversationExpiresAt?: Date;
  expiresAfterUse?: boolean;
  /** Emit the 0x1F compressed form when smaller (default true, like iOS). */
  compress?: boolean;
  /** Only for deterministic test vectors. */
  tokenNonce?: Uint8Array;
}

export interface CreatedInvite {
  slug: string;
  url: string;
  payloadBytes: Uint8Array;
  signature: Uint8Array;
}

const toUnix = (d: Date): number => Math.floor(d.getTime() / 1000);

export function createInvite(o: CreateInviteOptions): CreatedInvite {
  if (!o.tag) throw new InviteError('bad_argument', 'invite tag is empty');
  const creatorInboxId = bytesToHex(hexToBytes(o.creatorInboxId, 'creator inbox id'));
  const payload: InvitePayload = {
    conversationToken: encryptConversationToken(
      o.conversationId,
      creatorInboxId,
      o.walletPrivateKey,
      o.tokenNonce,
    ),
    creatorInboxId,
    tag: o.tag,
    expiresAfterUse: o.expiresAfterUse ?? false,
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(o.description !== undefined ? { description: o.description } : {}),
    ...(o.imageUrl !== undefined ? { imageUrl: o.imageUrl } : {}),
    ...(o.emoji !== undefined ? { emoji: o.emoji } : {}),
    ...(o.expiresAt ? { expiresAtUnix: toUnix(o.expiresAt) } : {}),
    ...(o.conversationExpiresAt ? { conversationExpiresAtUnix: toUnix(o.conversationExpiresAt) } : {}),
  };
  const payloadBytes = encodeInvitePayload(payload);
  const signature = signPayload(payloadBytes, o.walletPrivateKey);
  const slug = encodeSlug(payloadBytes, signature, o.compress ?? true);
  return { slug, url: inviteUrlFor(slug, o.env), payloadBytes, signature };
}

/** SignedInvite bytes → slug (with `*` separators). */
export function encodeSlug(payloadBytes: Uint8Array, signature: Uint8Array, compress = true): string {
  const signed = encodeSignedInvite({ payload: payloadBytes, signature });
  return insertSeparators(base64urlEncode(compress ? compressIfSmaller(signed) : signed));
}
