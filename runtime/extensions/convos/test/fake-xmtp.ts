import { createHash, randomBytes } from 'node:crypto';
import {
  type ConsentValue,
  type CreateGroupOptions,
  EXPLODE_SETTINGS_CONTENT_TYPE,
  GROUP_UPDATED_CONTENT_TYPE,
  JOIN_REQUEST_CONTENT_TYPE,
  type JoinRequestContent,
  TEXT_CONTENT_TYPE,
  type XmtpClient,
  type XmtpClientFactory,
  type XmtpConversation,
  type XmtpDm,
  type XmtpEnv,
  type XmtpGroup,
  type XmtpIdentityKeys,
  type XmtpMessage,
  type XmtpMessageStream,
} from '../src/xmtp/types.js';

/**
 * An in-memory XMTP network shared by several clients: groups and DMs with members, appData, consent,
 * and per-client message streams (which, as on the real network, also deliver the sender's own
 * messages). Faults can be injected: go offline (client creation fails) and break streams.
 *
 * Membership changes behave as on XMTP: removing a member (or a member leaving) posts a group_updated
 * message that the removed member also receives, and the group stays in a former member's list, readable
 * but inactive (node-sdk's `isActive`). Convos' explode is an explode_settings message from the creator
 * followed by the removal of every other member (@xmtp/convos-cli `conversation explode`).
 */

interface ConvState {
  id: string;
  kind: 'group' | 'dm';
  name: string;
  appData: string;
  members: Set<string>;
  /** Removed or left: they still see the group (inactive), and get no new messages. */
  formerMembers: Set<string>;
  consent: Map<string, ConsentValue>;
  messages: XmtpMessage[];
}

class FakeStream implements XmtpMessageStream {
  private queue: XmtpMessage[] = [];
  private waiting: ((r: IteratorResult<XmtpMessage>) => void) | undefined;
  private failWith: ((e: Error) => void) | undefined;
  done = false;
  private error: Error | undefined;

  push(m: XmtpMessage): void {
    if (this.done) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      this.failWith = undefined;
      w({ value: m, done: false });
    } else this.queue.push(m);
  }

  fail(err: Error): void {
    this.error = err;
    this.done = true;
    if (this.failWith) {
      const f = this.failWith;
      this.waiting = undefined;
      this.failWith = undefined;
      f(err);
    }
  }

  async end(): Promise<void> {
    this.done = true;
    const w = this.waiting;
    this.waiting = undefined;
    this.failWith = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<XmtpMessage> {
    return {
      next: () => {
        const m = this.queue.shift();
        if (m) return Promise.resolve({ value: m, done: false });
        if (this.error) return Promise.reject(this.error);
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiting = resolve;
          this.failWith = reject;
        });
      },
      return: async () => {
        await this.end();
        return { value: undefined, done: true };
      },
    };
  }
}

export class FakeNetwork {
  online = true;
  readonly conversations = new Map<string, ConvState>();
  private readonly streams = new Map<string, Set<FakeStream>>();
  clientsCreated = 0;
  groupsCreated = 0;

  static inboxIdFor(walletKey: Uint8Array): string {
    return createHash('sha256').update(walletKey).digest('hex');
  }

  factory(): XmtpClientFactory {
    return {
      create: async (keys: XmtpIdentityKeys, _env: XmtpEnv) => {
        if (!this.online) throw new Error('service is currently unavailable (fake network offline)');
        this.clientsCreated++;
        return new FakeClient(this, FakeNetwork.inboxIdFor(keys.walletKey));
      },
    };
  }

  /** A bare client for a person in tests (not a runtime). */
  personClient(): FakeClient {
    return new FakeClient(this, randomBytes(32).toString('hex'));
  }

  openStream(inboxId: string): FakeStream {
    const s = new FakeStream();
    let set = this.streams.get(inboxId);
    if (!set) {
      set = new Set();
      this.streams.set(inboxId, set);
    }
    set.add(s);
    return s;
  }

  /** Ends every open stream with an error, as a dropped connection would. */
  breakStreams(): void {
    for (const set of this.streams.values()) {
      for (const s of set) s.fail(new Error('stream connection lost'));
      set.clear();
    }
  }

  openStreamCount(inboxId: string): number {
    return [...(this.streams.get(inboxId) ?? [])].filter((s) => !s.done).length;
  }

  deliver(conv: ConvState, m: XmtpMessage, alsoTo: string[] = []): void {
    conv.messages.push(m);
    for (const member of new Set([...conv.members, ...alsoTo])) {
      for (const s of this.streams.get(member) ?? []) s.push(m);
    }
  }

  /**
   * `by` removes `removed` (or they left, when `left`): a group_updated message from `by`, which the
   * removed members receive too, then they are former members.
   */
  changeMembers(conv: ConvState, by: string, removed: string[], left = false): void {
    for (const id of removed) {
      conv.members.delete(id);
      conv.formerMembers.add(id);
    }
    this.deliver(
      conv,
      {
        id: randomBytes(8).toString('hex'),
        conversationId: conv.id,
        senderInboxId: by,
        sentAt: new Date(),
        contentType: GROUP_UPDATED_CONTENT_TYPE,
        groupUpdated: left
          ? { removedInboxIds: [], leftInboxIds: removed }
          : { removedInboxIds: removed, leftInboxIds: [] },
      },
      removed,
    );
  }

  newConversation(kind: 'group' | 'dm', members: string[], opts: CreateGroupOptions = {}): ConvState {
    const c: ConvState = {
      id: randomBytes(16).toString('hex'),
      kind,
      name: opts.groupName ?? '',
      appData: opts.appData ?? '',
      members: new Set(members),
      formerMembers: new Set(),
      consent: new Map(),
      messages: [],
    };
    this.conversations.set(c.id, c);
    if (kind === 'group') this.groupsCreated++;
    return c;
  }

  groups(): ConvState[] {
    return [...this.conversations.values()].filter((c) => c.kind === 'group');
  }
}

export class FakeClient implements XmtpClient {
  closed = false;
  constructor(
    private readonly net: FakeNetwork,
    readonly inboxId: string,
  ) {}

  private check(): void {
    if (this.closed) throw new Error('client closed');
    if (!this.net.online) throw new Error('service is currently unavailable (fake network offline)');
  }

  private view(c: ConvState): XmtpConversation {
    return c.kind === 'group'
      ? new FakeGroup(this.net, c, this.inboxId)
      : new FakeDm(this.net, c, this.inboxId);
  }

  async createGroup(inboxIds: string[], options: CreateGroupOptions): Promise<XmtpGroup> {
    this.check();
    return new FakeGroup(
      this.net,
      this.net.newConversation('group', [this.inboxId, ...inboxIds], options),
      this.inboxId,
    );
  }

  async createDm(inboxId: string): Promise<XmtpDm> {
    this.check();
    const existing = [...this.net.conversations.values()].find(
      (c) => c.kind === 'dm' && c.members.has(this.inboxId) && c.members.has(inboxId),
    );
    return new FakeDm(
      this.net,
      existing ?? this.net.newConversation('dm', [this.inboxId, inboxId]),
      this.inboxId,
    );
  }

  async listConversations(): Promise<XmtpConversation[]> {
    this.check();
    return [...this.net.conversations.values()]
      .filter((c) => c.members.has(this.inboxId) || c.formerMembers.has(this.inboxId))
      .map((c) => this.view(c));
  }

  async getConversationById(id: string): Promise<XmtpConversation | undefined> {
    this.check();
    const c = this.net.conversations.get(id);
    return c && (c.members.has(this.inboxId) || c.formerMembers.has(this.inboxId)) ? this.view(c) : undefined;
  }

  async syncAll(): Promise<void> {
    this.check();
  }

  async streamAllMessages(): Promise<XmtpMessageStream> {
    this.check();
    return this.net.openStream(this.inboxId);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

abstract class FakeConversationBase {
  constructor(
    protected readonly net: FakeNetwork,
    protected readonly c: ConvState,
    protected readonly self: string,
  ) {}

  get id(): string {
    return this.c.id;
  }

  protected guard(): void {
    if (!this.net.online) throw new Error('service is currently unavailable (fake network offline)');
    if (!this.c.members.has(this.self)) throw new Error('not a member');
  }

  private post(m: Omit<XmtpMessage, 'id' | 'conversationId' | 'senderInboxId' | 'sentAt'>): string {
    this.guard();
    const id = randomBytes(8).toString('hex');
    this.net.deliver(this.c, {
      id,
      conversationId: this.c.id,
      senderInboxId: this.self,
      sentAt: new Date(),
      ...m,
    });
    return id;
  }

  async sendText(text: string): Promise<string> {
    return this.post({ contentType: TEXT_CONTENT_TYPE, text });
  }

  async sendJoinRequest(request: JoinRequestContent): Promise<string> {
    return this.post({
      contentType: JOIN_REQUEST_CONTENT_TYPE,
      joinRequest: request,
      fallback: request.inviteSlug,
    });
  }

  /** Test helper: a message with an arbitrary (possibly malformed) join request body. */
  async sendRawJoinRequest(joinRequest: JoinRequestContent | undefined): Promise<string> {
    return this.post({ contentType: JOIN_REQUEST_CONTENT_TYPE, ...(joinRequest ? { joinRequest } : {}) });
  }

  consent(): ConsentValue {
    return this.c.consent.get(this.self) ?? 'unknown';
  }

  async setConsent(state: 'allowed' | 'denied'): Promise<void> {
    this.c.consent.set(this.self, state);
  }

  async sync(): Promise<void> {
    if (!this.net.online) throw new Error('service is currently unavailable (fake network offline)');
  }

  async messages(): Promise<XmtpMessage[]> {
    return [...this.c.messages];
  }
}

export class FakeGroup extends FakeConversationBase implements XmtpGroup {
  readonly kind = 'group' as const;

  name(): string {
    return this.c.name;
  }

  appData(): string {
    return this.c.appData;
  }

  async updateAppData(appData: string): Promise<void> {
    this.guard();
    this.c.appData = appData;
  }

  async addMembers(inboxIds: string[]): Promise<void> {
    this.guard();
    for (const id of inboxIds) this.c.members.add(id);
  }

  async memberInboxIds(): Promise<string[]> {
    return [...this.c.members];
  }

  isActive(): boolean {
    return this.c.members.has(this.self);
  }

  /** Self-removal: on XMTP an admin's client acts on the leave request; here it takes effect at once. */
  async leave(): Promise<void> {
    this.guard();
    this.net.changeMembers(this.c, this.self, [this.self], true);
  }

  /** Test helper: we (an admin) remove members. */
  async removeMembers(inboxIds: string[]): Promise<void> {
    this.guard();
    this.net.changeMembers(this.c, this.self, inboxIds);
  }

  /** Test helper: Convos' explode by us, the creator: the explode message, then everyone else removed. */
  async explode(expiresAt = new Date()): Promise<void> {
    await this.sendExplode(expiresAt);
    if (expiresAt.getTime() <= Date.now())
      await this.removeMembers([...this.c.members].filter((m) => m !== this.self));
  }

  /** Test helper: only the explode message (a scheduled explode: members are removed later). */
  async sendExplode(expiresAt: Date): Promise<void> {
    this.guard();
    this.net.deliver(this.c, {
      id: randomBytes(8).toString('hex'),
      conversationId: this.c.id,
      senderInboxId: this.self,
      sentAt: new Date(),
      contentType: EXPLODE_SETTINGS_CONTENT_TYPE,
      explode: { expiresAt },
      fallback: `Conversation expires at ${expiresAt.toISOString()}`,
    });
  }
}

export class FakeDm extends FakeConversationBase implements XmtpDm {
  readonly kind = 'dm' as const;

  async peerInboxId(): Promise<string> {
    return [...this.c.members].find((m) => m !== this.self) ?? this.self;
  }
}
