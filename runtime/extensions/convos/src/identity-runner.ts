import { decodeAppData, encodeAppData } from '../../../src/invite/index.js';
import type { AgentBridge, Log } from './agent.js';
import { type BackoffOptions, DEFAULT_BACKOFF, backoffDelay, sleep } from './backoff.js';
import { type IdentityRecord, type IdentityStore, keysOf } from './identity-store.js';
import { decideJoinRequest } from './join-requests.js';
import {
  TEXT_CONTENT_TYPE,
  type XmtpClient,
  type XmtpClientFactory,
  type XmtpConversation,
  type XmtpGroup,
  type XmtpMessage,
  isContentType,
} from './xmtp/types.js';

/**
 * Runs one identity (one conversation): keeps its XMTP client connected and its message stream open
 * (reconnecting with backoff), accepts join requests when it created the group, waits to be let in
 * when it joined by invite, and hands group messages to the agent, one turn at a time per group.
 */

export interface RunnerDeps {
  factory: XmtpClientFactory;
  store: IdentityStore;
  agent: AgentBridge;
  log: Log;
  now: () => Date;
  backoff: BackoffOptions;
  /** How often a joiner checks whether it was added (grows with backoff in the background). */
  joinPollMs: number;
  /** Called when a member's message arrives in our conversation and when the agent sends into it. */
  onActivity?: () => void;
}

/** Protocol housekeeping in a group, not conversation: it does not count as activity. */
const HOUSEKEEPING_TYPES = new Set(['xmtp.org/group_updated', 'xmtp.org/read_receipt']);

export class IdentityRunner {
  private client: XmtpClient | undefined;
  private connecting: Promise<XmtpClient> | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private poller: Promise<void> | undefined;
  private stream: { end(): Promise<void> } | undefined;
  private readonly turns = new Map<string, Promise<void>>();
  private joinWaiters: Array<() => void> = [];

  constructor(
    public record: IdentityRecord,
    private readonly deps: RunnerDeps,
  ) {}

  get label(): string {
    return `identity ${this.record.id}`;
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** The connected client, created once; concurrent callers share the attempt. */
  async connect(): Promise<XmtpClient> {
    if (this.client) return this.client;
    this.connecting ??= this.deps.factory
      .create(keysOf(this.record), this.record.env)
      .then((c) => {
        this.client = c;
        return c;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  async save(patch: Partial<IdentityRecord>): Promise<void> {
    this.record = { ...this.record, ...patch };
    await this.deps.store.save(this.record);
  }

  /** Starts the background loop (idempotent). */
  start(): void {
    if (this.loop || this.stopped) return;
    this.loop = this.run();
    if (this.record.role === 'joiner' && !this.record.conversationId) this.poller = this.pollForGroup();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const w of this.joinWaiters) w();
    await this.stream?.end().catch(() => {});
    await this.loop?.catch(() => {});
    await this.poller?.catch(() => {});
    await Promise.allSettled([...this.turns.values()]);
    await this.client?.close().catch(() => {});
    this.client = undefined;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const client = await this.connect();
        await client.syncAll();
        if (this.record.role === 'joiner' && !this.record.conversationId) await this.findJoinedGroup();
        if (this.record.role === 'creator') await this.catchUpJoinRequests(client);
        const stream = await client.streamAllMessages();
        this.stream = stream;
        if (signal.aborted) break;
        attempt = 0;
        this.deps.log.info(`convos: ${this.label} streaming`);
        for await (const msg of stream) {
          if (signal.aborted) break;
          this.handle(msg).catch((err) => this.deps.log.warn(`convos: ${this.label} message failed: ${errText(err)}`));
        }
        if (signal.aborted) break;
        this.deps.log.warn(`convos: ${this.label} stream ended; reconnecting`);
      } catch (err) {
        if (signal.aborted) break;
        this.deps.log.warn(`convos: ${this.label} connection failed (attempt ${attempt + 1}): ${errText(err)}`);
        // A broken client is rebuilt from the same keys and DB on the next attempt.
        await this.client?.close().catch(() => {});
        this.client = undefined;
      }
      await sleep(backoffDelay(attempt++, this.deps.backoff), signal);
    }
  }

  /** Background wait for the creator to add us, after the bounded wait in provision gave up. */
  private async pollForGroup(): Promise<void> {
    let attempt = 0;
    while (!this.stopped && !this.record.conversationId) {
      const delay = Math.min(this.deps.joinPollMs * 2 ** attempt++, DEFAULT_BACKOFF.maxMs);
      if (!(await sleep(delay, this.abort.signal))) return;
      try {
        await this.client?.syncAll();
        await this.findJoinedGroup();
      } catch (err) {
        this.deps.log.warn(`convos: ${this.label} join check failed: ${errText(err)}`);
      }
    }
  }

  /**
   * Joiner: the group we were invited to is the one whose appData carries the invite's tag (our
   * identity is fresh, so it is in no other group; the tag guards against strangers adding us).
   */
  async findJoinedGroup(): Promise<XmtpGroup | undefined> {
    if (!this.client || !this.record.inviteTag) return undefined;
    for (const c of await this.client.listConversations()) {
      if (c.kind !== 'group') continue;
      if (safeTag(c.appData()) !== this.record.inviteTag) continue;
      await this.onJoined(c);
      return c;
    }
    return undefined;
  }

  private async onJoined(group: XmtpGroup): Promise<void> {
    if (this.record.conversationId) return;
    await this.save({ conversationId: group.id, status: 'joined' });
    this.deps.log.info(`convos: ${this.label} joined its conversation`);
    for (const w of this.joinWaiters) w();
    this.joinWaiters = [];
    // Show the agent's name in the Convos app; failing to is cosmetic.
    await this.upsertProfile(group, this.record.inboxId ?? '', this.record.agentName).catch((err) =>
      this.deps.log.warn(`convos: ${this.label} could not write its profile: ${errText(err)}`),
    );
  }

  /** Resolves true once joined, false at the deadline (or on stop). Polls because streams may lag. */
  async waitForJoin(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.record.conversationId && !this.stopped && Date.now() < deadline) {
      try {
        await this.client?.syncAll();
        if (await this.findJoinedGroup()) return true;
      } catch (err) {
        this.deps.log.warn(`convos: ${this.label} join check failed: ${errText(err)}`);
      }
      const wait = Math.min(this.deps.joinPollMs, Math.max(0, deadline - Date.now()));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.joinWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return Boolean(this.record.conversationId);
  }

  async upsertProfile(group: XmtpGroup, inboxId: string, name: string): Promise<void> {
    if (!inboxId) return;
    const meta = decodeAppData(group.appData());
    if (!meta.tag) return; // never write metadata without its tag: that would revoke every invite
    const existing = meta.profiles.find((p) => p.inboxId === inboxId);
    if (existing?.name === name) return;
    const profiles = existing
      ? meta.profiles.map((p) => (p.inboxId === inboxId ? { ...p, name } : p))
      : [...meta.profiles, { inboxId, name }];
    await group.updateAppData(encodeAppData({ ...meta, profiles }));
  }

  async sendText(conversationId: string, text: string): Promise<string> {
    const client = await this.connect();
    const conv = await client.getConversationById(conversationId);
    if (!conv || conv.kind !== 'group') throw new Error('conversation not found for this identity');
    const id = await conv.sendText(text);
    this.deps.onActivity?.();
    return id;
  }

  /** Processes one streamed message (or one found while catching up). */
  async handle(msg: XmtpMessage): Promise<void> {
    const client = this.client;
    if (!client) return;
    // Our own sends come back on the stream; answering them would loop forever.
    if (msg.senderInboxId === client.inboxId) return;
    const conv = await client.getConversationById(msg.conversationId);
    if (!conv) return;
    if (conv.kind === 'dm') {
      if (this.record.role === 'creator') await this.handleJoinRequest(conv, msg);
      return;
    }
    if (!this.record.conversationId && this.record.role === 'joiner' && safeTag(conv.appData()) === this.record.inviteTag) {
      await this.onJoined(conv);
    }
    // Only our one conversation reaches the agent: being added to other groups must not make it talk.
    if (conv.id !== this.record.conversationId) return;
    if (!HOUSEKEEPING_TYPES.has(`${msg.contentType.authorityId}/${msg.contentType.typeId}`)) this.deps.onActivity?.();
    if (!isContentType(msg.contentType, TEXT_CONTENT_TYPE) || !msg.text?.trim()) return;
    this.enqueueTurn(conv, msg);
  }

  private enqueueTurn(group: XmtpGroup, msg: XmtpMessage): void {
    const prev = this.turns.get(group.id) ?? Promise.resolve();
    const next = prev
      .then(() =>
        this.deps.agent.dispatch(
          {
            conversationId: group.id,
            groupName: group.name(),
            messageId: msg.id,
            senderInboxId: msg.senderInboxId,
            text: msg.text ?? '',
            sentAt: msg.sentAt,
          },
          async (text) => {
            if (!text.trim()) return;
            await group.sendText(text);
            this.deps.onActivity?.();
          },
        ),
      )
      .catch((err) =>
        this.deps.log.warn(`convos: ${this.label} agent turn failed: ${errText(err)}${process.env.CONVOS_DEBUG ? `\n${(err as Error)?.stack}` : ''}`),
      );
    this.turns.set(group.id, next);
    void next.finally(() => {
      if (this.turns.get(group.id) === next) this.turns.delete(group.id);
    });
  }

  /**
   * Streams only carry new messages: join requests sent while we were down or reconnecting are
   * found by reading the DMs we have not denied. Re-processing is harmless (members are ignored).
   */
  private async catchUpJoinRequests(client: XmtpClient): Promise<void> {
    for (const c of await client.listConversations()) {
      if (c.kind !== 'dm' || c.consent() === 'denied') continue;
      for (const m of await c.messages()) {
        if (m.senderInboxId === client.inboxId) continue;
        await this.handleJoinRequest(c, m).catch((err) =>
          this.deps.log.warn(`convos: ${this.label} join request failed: ${errText(err)}`),
        );
        if (c.consent() === 'denied') break;
      }
    }
  }

  private async handleJoinRequest(dm: XmtpConversation, msg: XmtpMessage): Promise<void> {
    const { conversationId, inboxId } = this.record;
    if (!conversationId || !inboxId || !this.client) return;
    const group = await this.client.getConversationById(conversationId);
    if (!group || group.kind !== 'group') return;
    await group.sync();
    const decision = decideJoinRequest({
      message: msg,
      ourInboxId: inboxId,
      ourWalletKey: keysOf(this.record).walletKey,
      ourConversationId: conversationId,
      groupAppData: group.appData(),
      groupMembers: await group.memberInboxIds(),
      now: this.deps.now(),
    });
    if (decision.kind === 'ignore') return;
    if (decision.kind === 'deny') {
      this.deps.log.warn(`convos: ${this.label} denied a join request from ${msg.senderInboxId}: ${decision.reason}`);
      await dm.setConsent('denied');
      return;
    }
    await group.addMembers([msg.senderInboxId]);
    await dm.setConsent('allowed');
    this.deps.log.info(`convos: ${this.label} added ${msg.senderInboxId} to its conversation`);
    if (decision.profileName) {
      await this.upsertProfile(group, msg.senderInboxId, decision.profileName).catch(() => {});
    }
  }
}

function safeTag(appData: string): string {
  try {
    return decodeAppData(appData).tag;
  } catch {
    return '';
  }
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
