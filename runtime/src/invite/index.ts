/**
 * Convos invite codec: the public surface. Pure TypeScript on @noble/* and node:zlib — no XMTP or
 * OpenClaw imports — so the control plane can validate a joinUrl without installing the runtime.
 */
export { InviteError, isInviteError, type InviteErrorCode } from './errors.js';
export {
  createInvite,
  encodeSlug,
  parseInviteUrl,
  verifyInvite,
  type CreateInviteOptions,
  type CreatedInvite,
  type ParsedInvite,
  type VerifiedInvite,
  type VerifyOptions,
} from './invite.js';
export type { InvitePayload } from './payload.js';
export { decryptConversationToken, encryptConversationToken } from './token.js';
export { publicKeyToAddress, walletPublicKey } from './signature.js';
export { extractSlug, inviteMatchesEnv, inviteUrlFor, type InviteEnv, type XmtpEnv } from './url.js';
export {
  decodeAppData,
  encodeAppData,
  generateInviteTag,
  type ConversationMetadata,
  type ConversationProfile,
} from './metadata.js';
