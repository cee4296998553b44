/**
 * The subset of an XMTP client the convos channel uses. The real adapter (node-sdk.ts) wraps
 * @xmtp/node-sdk; tests use an in-memory network (test/fake-xmtp.ts). Keeping the surface this small
 * is what makes the channel's logic testable on machines with no XMTP network.
 */

export type XmtpEnv = 'dev' | 'production' | 'local';

export interface ContentTypeRef {
  authorityId: string;
  typeId: string;
  versionMajor: number;
  versionMinor: number;
}

/** The Convos join request (content type convos.org/join_request:1.0, JSON). */
export interface JoinRequestContent {
  inviteSlug: string;
  profile?: { name?: string; memberKind?: string };
  metadata?: Record<string, unknown>;
}

export interface XmtpMessage {
  id: string;
  conversationId: string;
  senderInboxId: string;
  sentAt: Date;
  contentType: ContentTypeRef;
  /** Set for xmtp.org/text messages. */
  text?: string;
  /** Set for convos.org/join_request messages that decoded. */
  joinRequest?: JoinRequestContent;
  /** Set for xmtp.org/group_updated messages (membership changes, written by the network). */
  groupUpdated?: GroupUpdate;
  /** Set for convos.org/explode_settings messages that decoded: the conversation ends at `expiresAt`. */
  explode?: { expiresAt: Date };
  fallback?: string;
}

/** The membership part of a group_updated message: who was removed by someone, who left. */
export interface GroupUpdate {
  removedInboxIds: string[];
  leftInboxIds: string[];
}

export interface CreateGroupOptions {
  groupName?: string;
  groupDescription?: string;
  groupImageUrlSquare?: string;
  appData?: string;
}

export type ConsentValue = 'allowed' | 'denied' | 'unknown';

interface XmtpConversationBase {
  readonly id: string;
  sendText(text: string): Promise<string>;
  sendJoinRequest(request: JoinRequestContent): Promise<string>;
  consent(): ConsentValue;
  setConsent(state: 'allowed' | 'denied'): Promise<void>;
  sync(): Promise<void>;
  /** Stored messages, oldest first (used to catch up on join requests sent while we were down). */
  messages(): Promise<XmtpMessage[]>;
}

export interface XmtpGroup extends XmtpConversationBase {
  readonly kind: 'group';
  name(): string;
  appData(): string;
  updateAppData(appData: string): Promise<void>;
  addMembers(inboxIds: string[]): Promise<void>;
  memberInboxIds(): Promise<string[]>;
  /** False once we are no longer a member (removed, or the group was ended); the group stays readable. */
  isActive(): boolean;
  /** Asks to leave the group (XMTP's self-removal: an admin's client removes us). */
  leave(): Promise<void>;
}

export interface XmtpDm extends XmtpConversationBase {
  readonly kind: 'dm';
  peerInboxId(): Promise<string>;
}

export type XmtpConversation = XmtpGroup | XmtpDm;

/** A live message stream; `end()` stops it (iteration then finishes). */
export interface XmtpMessageStream extends AsyncIterable<XmtpMessage> {
  end(): Promise<void>;
}

export interface XmtpClient {
  readonly inboxId: string;
  createGroup(inboxIds: string[], options: CreateGroupOptions): Promise<XmtpGroup>;
  createDm(inboxId: string): Promise<XmtpDm>;
  listConversations(): Promise<XmtpConversation[]>;
  getConversationById(id: string): Promise<XmtpConversation | undefined>;
  /** Pulls new conversations and messages from the network. */
  syncAll(): Promise<void>;
  streamAllMessages(): Promise<XmtpMessageStream>;
  close(): Promise<void>;
}

/** Secrets for one identity. Never logged. */
export interface XmtpIdentityKeys {
  walletKey: Uint8Array;
  dbEncryptionKey: Uint8Array;
  dbPath: string;
}

export interface XmtpClientFactory {
  create(keys: XmtpIdentityKeys, env: XmtpEnv): Promise<XmtpClient>;
}

export const TEXT_CONTENT_TYPE: ContentTypeRef = {
  authorityId: 'xmtp.org',
  typeId: 'text',
  versionMajor: 1,
  versionMinor: 0,
};
export const JOIN_REQUEST_CONTENT_TYPE: ContentTypeRef = {
  authorityId: 'convos.org',
  typeId: 'join_request',
  versionMajor: 1,
  versionMinor: 0,
};

export const GROUP_UPDATED_CONTENT_TYPE: ContentTypeRef = {
  authorityId: 'xmtp.org',
  typeId: 'group_updated',
  versionMajor: 1,
  versionMinor: 0,
};
/** Convos' explode (matches the iOS ExplodeSettingsCodec): JSON `{ expiresAt: ISO 8601 }`. */
export const EXPLODE_SETTINGS_CONTENT_TYPE: ContentTypeRef = {
  authorityId: 'convos.org',
  typeId: 'explode_settings',
  versionMajor: 1,
  versionMinor: 0,
};

export function isContentType(a: ContentTypeRef, b: ContentTypeRef): boolean {
  return a.authorityId === b.authorityId && a.typeId === b.typeId;
}
