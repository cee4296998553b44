import { Client, type DecodedMessage, type Dm, Group } from '@xmtp/node-sdk';
import { ethSigner } from './eth-signer.js';
import {
  type ConsentValue,
  type ContentTypeRef,
  EXPLODE_SETTINGS_CONTENT_TYPE,
  JOIN_REQUEST_CONTENT_TYPE,
  type JoinRequestContent,
  type XmtpClient,
  type XmtpClientFactory,
  type XmtpConversation,
  type XmtpEnv,
  type XmtpIdentityKeys,
  type XmtpMessage,
  type XmtpMessageStream,
} from './types.js';

/**
 * The real XMTP client behind the channel's small interface, on @xmtp/node-sdk 5.5.0 (6.x needs
 * glibc 2.38). The SDK's enums are `const enum`s, which isolatedModules cannot inline: the numeric
 * values are spelled out below.
 */

const IDENTIFIER_KIND_ETHEREUM = 0;
const CONSENT = { unknown: 0, allowed: 1, denied: 2 } as const;

/** convos.org/join_request:1.0 — JSON, fallback text = the slug (matches the iOS JoinRequestCodec). */
export const joinRequestCodec = {
  contentType: JOIN_REQUEST_CONTENT_TYPE,
  encode: (content: JoinRequestContent) => ({
    type: JOIN_REQUEST_CONTENT_TYPE,
    parameters: {},
    fallback: content.inviteSlug,
    content: new TextEncoder().encode(JSON.stringify(content)),
  }),
  decode: (encoded: { content: Uint8Array }): JoinRequestContent => {
    const parsed = JSON.parse(new TextDecoder().decode(encoded.content)) as JoinRequestContent;
    if (typeof parsed?.inviteSlug !== 'string') throw new Error('join request without inviteSlug');
    return parsed;
  },
  fallback: (content: JoinRequestContent) => content.inviteSlug,
  shouldPush: () => true,
};

/**
 * convos.org/explode_settings:1.0 — JSON `{ expiresAt }` (matches the iOS ExplodeSettingsCodec and
 * @xmtp/convos-cli). We only read it: the creator sends it right before removing every member.
 */
export const explodeSettingsCodec = {
  contentType: EXPLODE_SETTINGS_CONTENT_TYPE,
  encode: (content: { expiresAt: string }) => ({
    type: EXPLODE_SETTINGS_CONTENT_TYPE,
    parameters: {},
    fallback: `Conversation expires at ${content.expiresAt}`,
    content: new TextEncoder().encode(JSON.stringify({ expiresAt: content.expiresAt })),
  }),
  decode: (encoded: { content: Uint8Array }): { expiresAt: string } => {
    const parsed = JSON.parse(new TextDecoder().decode(encoded.content)) as { expiresAt?: unknown };
    if (typeof parsed?.expiresAt !== 'string') throw new Error('explode settings without expiresAt');
    return { expiresAt: parsed.expiresAt };
  },
  fallback: (content: { expiresAt: string }) => `Conversation expires at ${content.expiresAt}`,
  shouldPush: () => true,
};

type AnyConversation = Group<unknown> | Dm<unknown>;

function toMessage(m: DecodedMessage<unknown>): XmtpMessage {
  const ct: ContentTypeRef = {
    authorityId: m.contentType.authorityId,
    typeId: m.contentType.typeId,
    versionMajor: m.contentType.versionMajor,
    versionMinor: m.contentType.versionMinor,
  };
  const out: XmtpMessage = {
    id: m.id,
    conversationId: m.conversationId,
    senderInboxId: m.senderInboxId,
    sentAt: m.sentAt,
    contentType: ct,
    ...(m.fallback !== undefined ? { fallback: m.fallback } : {}),
  };
  if (ct.authorityId === 'xmtp.org' && ct.typeId === 'text' && typeof m.content === 'string')
    out.text = m.content;
  const c = m.content as Partial<JoinRequestContent> | undefined;
  if (ct.authorityId === 'convos.org' && ct.typeId === 'join_request' && typeof c?.inviteSlug === 'string') {
    out.joinRequest = c as JoinRequestContent;
  }
  if (ct.authorityId === 'xmtp.org' && ct.typeId === 'group_updated') {
    type Inboxes = Array<{ inboxId: string }> | undefined;
    const u = m.content as { removedInboxes?: Inboxes; leftInboxes?: Inboxes } | undefined;
    out.groupUpdated = {
      removedInboxIds: (u?.removedInboxes ?? []).map((i) => i.inboxId),
      leftInboxIds: (u?.leftInboxes ?? []).map((i) => i.inboxId),
    };
  }
  const e = m.content as { expiresAt?: unknown } | undefined;
  if (
    ct.authorityId === 'convos.org' &&
    ct.typeId === 'explode_settings' &&
    typeof e?.expiresAt === 'string'
  ) {
    const expiresAt = new Date(e.expiresAt);
    if (!Number.isNaN(expiresAt.getTime())) out.explode = { expiresAt };
  }
  return out;
}

function consentOf(c: AnyConversation): ConsentValue {
  const v = c.consentState() as unknown as number;
  return v === CONSENT.allowed ? 'allowed' : v === CONSENT.denied ? 'denied' : 'unknown';
}

function wrap(c: AnyConversation): XmtpConversation {
  const base = {
    id: c.id,
    sendText: (text: string) => c.sendText(text),
    sendJoinRequest: (r: JoinRequestContent) =>
      c.send(joinRequestCodec.encode(r) as unknown as Parameters<AnyConversation['send']>[0]),
    consent: () => consentOf(c),
    setConsent: async (state: 'allowed' | 'denied') => {
      c.updateConsentState(CONSENT[state] as unknown as Parameters<AnyConversation['updateConsentState']>[0]);
    },
    sync: () => c.sync(),
    messages: async () => (await c.messages()).map(toMessage),
  };
  if (c instanceof Group) {
    return {
      ...base,
      kind: 'group',
      name: () => c.name,
      appData: () => c.appData,
      updateAppData: (appData: string) => c.updateAppData(appData),
      addMembers: (ids: string[]) => c.addMembers(ids),
      memberInboxIds: async () => (await c.members()).map((m) => m.inboxId),
      isActive: () => c.isActive,
      // Self-removal: sends a leave request that the group's admins' clients act on.
      leave: () => c.requestRemoval(),
    };
  }
  return { ...base, kind: 'dm', peerInboxId: async () => (c as Dm<unknown>).peerInboxId };
}

class NodeSdkClient implements XmtpClient {
  constructor(private readonly c: Client<unknown>) {}

  get inboxId(): string {
    return this.c.inboxId ?? '';
  }

  async createGroup(inboxIds: string[], o: Parameters<XmtpClient['createGroup']>[1]) {
    const g = await this.c.conversations.createGroup(inboxIds, {
      ...(o.groupName !== undefined ? { groupName: o.groupName } : {}),
      ...(o.groupDescription !== undefined ? { groupDescription: o.groupDescription } : {}),
      ...(o.groupImageUrlSquare !== undefined ? { groupImageUrlSquare: o.groupImageUrlSquare } : {}),
      ...(o.appData !== undefined ? { appData: o.appData } : {}),
    });
    const w = wrap(g);
    if (w.kind !== 'group') throw new Error('createGroup returned a DM');
    return w;
  }

  async createDm(inboxId: string) {
    const w = wrap(await this.c.conversations.createDm(inboxId));
    if (w.kind !== 'dm') throw new Error('createDm returned a group');
    return w;
  }

  async listConversations() {
    return (await this.c.conversations.list()).map(wrap);
  }

  async getConversationById(id: string) {
    const c = await this.c.conversations.getConversationById(id);
    return c ? wrap(c) : undefined;
  }

  async syncAll(): Promise<void> {
    await this.c.conversations.syncAll();
  }

  async streamAllMessages(): Promise<XmtpMessageStream> {
    // The SDK retries internally; we disable that so failures surface to our own reconnect loop,
    // which also rebuilds the client and catches up on missed join requests.
    const s = await this.c.conversations.streamAllMessages({ retryOnFail: false });
    return {
      end: async () => {
        await s.end();
      },
      async *[Symbol.asyncIterator]() {
        for await (const m of s) if (m) yield toMessage(m);
      },
    };
  }

  async close(): Promise<void> {
    // node-sdk 5.x has no explicit close; dropping the reference releases the native handle.
  }
}

export interface NodeSdkFactoryOptions {
  /** Client.create gives up after this long (the SDK itself may retry for much longer offline). */
  connectTimeoutMs?: number;
  appVersion?: string;
}

export function nodeSdkFactory(o: NodeSdkFactoryOptions = {}): XmtpClientFactory {
  return {
    async create(keys: XmtpIdentityKeys, env: XmtpEnv): Promise<XmtpClient> {
      const signer = ethSigner(keys.walletKey);
      const create = Client.create(
        {
          type: 'EOA',
          getIdentifier: () => ({
            identifier: signer.address,
            identifierKind: IDENTIFIER_KIND_ETHEREUM as never,
          }),
          signMessage: (message: string) => signer.signMessage(message),
        },
        {
          env,
          dbPath: keys.dbPath,
          dbEncryptionKey: keys.dbEncryptionKey,
          codecs: [joinRequestCodec as never, explodeSettingsCodec as never],
          appVersion: o.appVersion ?? 'convos-agents/0.1',
        },
      );
      const timeoutMs = o.connectTimeoutMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`XMTP client did not connect within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        return new NodeSdkClient((await Promise.race([create, timeout])) as Client<unknown>);
      } catch (err) {
        // The SDK's errors can embed request details; keep the message, never the keys.
        throw new Error(`XMTP ${env}: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
