/**
 * Convos invite codec: the public surface. Pure TypeScript on @noble/* and node:zlib — no XMTP or
 * OpenClaw imports — so the control plane can validate a joinUrl without installing the runtime.
 */
export { InviteError, type InviteErrorCode, isInviteError } from './errors.js';
export {
  type CreatedInvite,
  type CreateInviteOptions,
  createInvite,
  encodeSlug,
  type ParsedInvite,
  parseInviteUrl,
  type VerifiedInvite,
  type VerifyOptions,
  verifyInvite,
} from './invite.js';
export {
  type ConversationMetadata,
  type ConversationProfile,
  decodeAppData,
  encodeAppData,
  generateInviteTag,
} from './metadata.js';
export type { InvitePayload } from './payload.js';
export { publicKeyToAddress, walletPublicKey } from './signature.js';
export { decryptConversationToken, encryptConversationToken } from './token.js';
export { extractSlug, type InviteEnv, inviteMatchesEnv, inviteUrlFor, type XmtpEnv } from './url.js';
