import {
  decodeAppData,
  decryptConversationToken,
  InviteError,
  parseInviteUrl,
  verifyInvite,
} from '../../../src/invite/index.js';
import {
  isContentType,
  JOIN_REQUEST_CONTENT_TYPE,
  TEXT_CONTENT_TYPE,
  type XmtpMessage,
} from './xmtp/types.js';

/**
 * The creator's decision on a join request arriving by DM. Pure: the caller supplies the facts it
 * fetched (our keys, our group's appData and members) and applies the decision.
 *   accept — add the sender to the group
 *   ignore — nothing to do (not an invite at all, or the sender is already a member: the joiner
 *            sends the request twice, as join_request content and as plain text)
 *   deny   — a malformed, forged, expired, revoked or foreign invite: deny consent for the DM
 */

export type JoinDecision =
  | { kind: 'accept'; profileName?: string }
  | { kind: 'ignore'; reason: string }
  | { kind: 'deny'; reason: string };

export interface JoinFacts {
  message: XmtpMessage;
  ourInboxId: string;
  ourWalletKey: Uint8Array;
  ourConversationId: string;
  groupAppData: string;
  groupMembers: string[];
  now: Date;
}

/** The slug carried by a DM, and whether it came as structured join_request content. */
export function slugFromMessage(
  m: XmtpMessage,
): { slug: string; structured: boolean; profileName?: string } | null {
  if (isContentType(m.contentType, JOIN_REQUEST_CONTENT_TYPE)) {
    if (!m.joinRequest?.inviteSlug) return { slug: '', structured: true };
    return {
      slug: m.joinRequest.inviteSlug,
      structured: true,
      ...(m.joinRequest.profile?.name ? { profileName: m.joinRequest.profile.name } : {}),
    };
  }
  if (isContentType(m.contentType, TEXT_CONTENT_TYPE) && m.text)
    return { slug: m.text.trim(), structured: false };
  return null;
}

export function decideJoinRequest(f: JoinFacts): JoinDecision {
  const carried = slugFromMessage(f.message);
  if (!carried) return { kind: 'ignore', reason: 'not a join request' };
  let invite: ReturnType<typeof parseInviteUrl>;
  try {
    invite = parseInviteUrl(carried.slug);
  } catch (err) {
    // Plain chat text in a DM is not an invite; only a structured join request with a bad slug is hostile.
    if (!carried.structured) return { kind: 'ignore', reason: 'text is not an invite' };
    return { kind: 'deny', reason: `malformed invite: ${(err as Error).message}` };
  }
  try {
    verifyInvite(invite, {
      expectedSigner: { walletPrivateKey: f.ourWalletKey },
      expectedCreatorInboxId: f.ourInboxId,
      now: f.now,
    });
  } catch (err) {
    return {
      kind: 'deny',
      reason: err instanceof InviteError ? `${err.code}: ${err.message}` : 'invalid invite',
    };
  }
  let conversationId: string;
  try {
    conversationId = decryptConversationToken(invite.payload.conversationToken, f.ourInboxId, f.ourWalletKey);
  } catch {
    return { kind: 'deny', reason: 'conversation token does not decrypt' };
  }
  if (conversationId !== f.ourConversationId)
    return { kind: 'deny', reason: 'invite is for another conversation' };
  let tag = '';
  try {
    tag = decodeAppData(f.groupAppData).tag;
  } catch {
    return { kind: 'deny', reason: 'group metadata unreadable' };
  }
  if (!tag || tag !== invite.tag) return { kind: 'deny', reason: 'invite tag was revoked' };
  if (f.groupMembers.includes(f.message.senderInboxId)) return { kind: 'ignore', reason: 'already a member' };
  return { kind: 'accept', ...(carried.profileName ? { profileName: carried.profileName } : {}) };
}
