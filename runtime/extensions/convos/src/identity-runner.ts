import { decodeAppData, encodeAppData } from '../../../src/invite/index.js';
import type { AgentBridge, Log } from './agent.js';
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF, sleep } from './backoff.js';
import { type ConversationExit, exitFromMessage, exitFromState } from './conversation-exit.js';
import { type IdentityRecord, type IdentityStore, keysOf } from './identity-store.js';
import { decideJoinRequest } from './join-requests.js';
import {
  isContentType,
  TEXT_CONTENT_TYPE,
  type XmtpClient,
  type XmtpClientFactory,
  type XmtpConversation,
  type XmtpGroup,
  type XmtpMessage,
} from './xmtp/types.js';

/**
 * Runs one identity (one conversation): keeps its XMTP client connected and its message stream open
 * (reconnecting with backoff), accepts join requests when it created the group, waits to be let in
 * when it joined by invite, and hands group messages to the agent, one turn at a time per group.
 * Once its conversation ends for it (removed, exploded, or it left: ./conversation-exit.ts) it records
 * why and never hands the agent anything again.
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

/** setTimeout's longest delay; a later explode time is re-armed when this one fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How many messages of one conversation may wait behind the agent's turn in progress. Members (or a
 * script holding the invite) can post far faster than a model answers (seconds to minutes a turn);
 * unbounded, a flood holds memory and then costs one model call per message for hours after it. Twenty
 * is more than a lively group writes during one slow turn. When full, the OLDEST waiting message is
 * dropped rather than the newest refused: a chat cannot refuse a message (it is already in the group),
 * and after a burst the people in the chat are waiting for an answer to what they said last, not to what
 * scrolled by first.
 */
export const MAX_PENDING_TURNS_PER_CONVERSATION = 20;

/**
 * The longest message text handed to the agent (the local chat page refuses longer ones). XMTP carries
 * much larger messages; a longer one is cut at this length with a note, so one message cannot fill the
 * model's context or the instance's budget.
 */
export const MAX_INBOUND_MESSAGE_CHARS = 8_000;

/** `text` cut to MAX_INBOUND_MESSAGE_CHARS (never inside a surrogate pair) with a note, or as is. */
export function capInboundText(text: string): string {
  if (text.length <= MAX_INBOUND_MESSAGE_CHARS) return text;
  let end = MAX_INBOUND_MESSAGE_CHARS;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}\n[message cut: ${text.length - end} more characters not shown]`;
}

interface TurnQueue {
  pending: Array<{ group: XmtpGroup; msg: XmtpMessage }>;
  /** Dropped from this queue since it last ran empty. */
  dropped: number;
  draining: Promise<void> | undefined;
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
  /** Per conversation: messages waiting for the agent, and the loop running their turns. */
  private readonly queues = new Map<string, TurnQueue>();
  private droppedTurns = 0;
  private joinWaiters: Array<() => void> = [];
  /** Fires at a scheduled explode time (record.endsAt). */
  private endTimer: NodeJS.Timeout | undefined;

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
    this.armEndTimer();
    this.loop = this.run();
    if (this.record.role === 'joiner' && !this.record.conversationId) this.poller = this.pollForGroup();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    clearTimeout(this.endTimer);
    for (const w of this.joinWaiters) w();
    await this.stream?.end().catch(() => {});
    await this.loop?.catch(() => {});
    await this.poller?.catch(() => {});
    await Promise.allSettled([...this.queues.values()].map((q) => q.draining));
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
        // Removed (or exploded) while we were offline: the stream would never say so.
        await this.checkMembership(client);
        if (this.record.role === 'creator') await this.catchUpJoinRequests(client);
        const stream = await client.streamAllMessages();
        this.stream = stream;
        if (signal.aborted) break;
        attempt = 0;
        this.deps.log.info(`convos: ${this.label} streaming`);
        for await (const msg of stream) {
          if (signal.aborted) break;
          this.handle(msg).catch((err) =>
            this.deps.log.warn(`convos: ${this.label} message failed: ${errText(err)}`),
          );
        }
        if (signal.aborted) break;
        this.deps.log.warn(`convos: ${this.label} stream ended; reconnecting`);
      } catch (err) {
        if (signal.aborted) break;
        this.deps.log.warn(
          `convos: ${this.label} connection failed (attempt ${attempt + 1}): ${errText(err)}`,
        );
        // A broken client is rebuilt from the same keys and DB on the next attempt.
        await this.client?.close().catch(() => {});
        this.client = undefined;
      }
      await sleep(backoffDelay(attempt++, this.deps.backoff), signal);
    }
  }

  /** Why the conversation ended for the agent, once it has. */
  get exit(): ConversationExit | null {
    return this.record.exit?.reason ?? null;
  }

  /**
   * Records the end of the conversation (once; persisted, so a restart stays silent too) and drops the
   * turns still waiting: nobody is there to read an answer.
   */
  private async end(reason: ConversationExit): Promise<void> {
    if (this.record.exit) return;
    await this.save({ exit: { reason, at: this.deps.now().toISOString() } });
    clearTimeout(this.endTimer);
    for (const q of this.queues.values()) q.pending.length = 0;
    this.deps.log.info(`convos: ${this.label} conversation over (${reason})`);
  }

  private async checkMembership(client: XmtpClient): Promise<void> {
    const { conversationId } = this.record;
    if (!conversationId || this.record.exit) return;
    const group = await client.getConversationById(conversationId);
    // Not found locally proves nothing (a fresh database before its first sync): only inactive does.
    if (group?.kind !== 'group') return;
    const endsAt = this.record.endsAt ? new Date(this.record.endsAt) : null;
    const exit = exitFromState(group.isActive(), endsAt, this.deps.now());
    if (exit) await this.end(exit);
  }

  /** A scheduled explode ends the conversation at its time, also after a restart. */
  private armEndTimer(): void {
    clearTimeout(this.endTimer);
    if (!this.record.endsAt || this.record.exit || this.stopped) return;
    const delay = new Date(this.record.endsAt).getTime() - this.deps.now().getTime();
    this.endTimer = setTimeout(
      () => {
        if (delay > MAX_TIMER_MS) return this.armEndTimer();
        this.end('conversation_ended').catch((err) =>
          this.deps.log.warn(`convos: ${this.label} could not record the end: ${errText(err)}`),
        );
      },
      Math.max(0, Math.min(delay, MAX_TIMER_MS)),
    );
    this.endTimer.unref?.();
  }

  /**
   * Leaves the conversation (the agent's leave_conversation tool, when the group asks it to go). The end
   * is recorded even when the network refuses the leave (say, the agent is the group's only super admin):
   * the instance is destroyed either way, and its identity with it.
   */
  async leave(): Promise<{ left: boolean; error?: string }> {
    const { conversationId } = this.record;
    if (!conversationId) throw new Error('this agent is in no conversation yet');
    let outcome: { left: boolean; error?: string } = { left: true };
    try {
      const client = await this.connect();
      const group = await client.getConversationById(conversationId);
      if (group?.kind === 'group' && group.isActive()) await group.leave();
    } catch (err) {
      outcome = { left: false, error: errText(err) };
      this.deps.log.warn(`convos: ${this.label} could not leave its conversation: ${outcome.error}`);
    }
    await this.end('left_conversation');
    return outcome;
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
    if (conv?.kind !== 'group') throw new Error('conversation not found for this identity');
    const id = await conv.sendText(text);
    this.deps.onActivity?.();
    return id;
  }

  /** Processes one streamed message (or one found while catching up). */
  async handle(msg: XmtpMessage): Promise<void> {
    const client = this.client;
    if (!client) return;
    if (this.record.exit) return;
    // Our own sends come back on the stream; answering them would loop forever.
    if (msg.senderInboxId === client.inboxId) return;
    const conv = await client.getConversationById(msg.conversationId);
    if (!conv) return;
    if (conv.kind === 'dm') {
      if (this.record.role === 'creator') await this.handleJoinRequest(conv, msg);
      return;
    }
    if (
      !this.record.conversationId &&
      this.record.role === 'joiner' &&
      safeTag(conv.appData()) === this.record.inviteTag
    ) {
      await this.onJoined(conv);
    }
    // Only our one conversation reaches the agent: being added to other groups must not make it talk.
    if (conv.id !== this.record.conversationId) return;
    if (await this.endedBy(conv, msg)) return;
    if (!HOUSEKEEPING_TYPES.has(`${msg.contentType.authorityId}/${msg.contentType.typeId}`))
      this.deps.onActivity?.();
    if (!isContentType(msg.contentType, TEXT_CONTENT_TYPE) || !msg.text?.trim()) return;
    this.enqueueTurn(conv, msg);
  }

  /** Whether this message of our conversation ended it (or scheduled its end). */
  private async endedBy(group: XmtpGroup, msg: XmtpMessage): Promise<boolean> {
    const verdict = exitFromMessage(msg, this.record.inboxId ?? '', this.deps.now());
    if (verdict && 'endsAt' in verdict) {
      await this.save({ endsAt: verdict.endsAt.toISOString() });
      this.armEndTimer();
      return false;
    }
    let exit = verdict?.exit ?? null;
    // A membership change we are not named in may still be the end of it (the group's own view).
    if (!exit && msg.groupUpdated) {
      const endsAt = this.record.endsAt ? new Date(this.record.endsAt) : null;
      exit = exitFromState(group.isActive(), endsAt, this.deps.now());
    }
    // The explode message comes first, then the creator's removal: the conversation ended.
    if (exit === 'removed_from_conversation' && this.record.endsAt) {
      if (new Date(this.record.endsAt).getTime() <= this.deps.now().getTime()) exit = 'conversation_ended';
    }
    if (!exit) return false;
    await this.end(exit);
    return true;
  }

  /** Messages waiting for a turn, and those dropped because too many were waiting (since start). */
  turnStats(): { pending: number; dropped: number } {
    let pending = 0;
    for (const q of this.queues.values()) pending += q.pending.length;
    return { pending, dropped: this.droppedTurns };
  }

  /**
   * Queues a turn for the agent; a conversation's turns run one at a time, in order. At most
   * MAX_PENDING_TURNS_PER_CONVERSATION wait behind the turn in progress: past that the oldest waiting
   * message is dropped (logged without its content).
   */
  private enqueueTurn(group: XmtpGroup, msg: XmtpMessage): void {
    let q = this.queues.get(group.id);
    if (!q) {
      q = { pending: [], dropped: 0, draining: undefined };
      this.queues.set(group.id, q);
    }
    q.pending.push({ group, msg });
    if (q.pending.length > MAX_PENDING_TURNS_PER_CONVERSATION) {
      const dropped = q.pending.splice(0, q.pending.length - MAX_PENDING_TURNS_PER_CONVERSATION).length;
      q.dropped += dropped;
      this.droppedTurns += dropped;
      // One line when a flood starts and one per hundred after: the log must not grow with the flood.
      if (q.dropped === dropped || Math.floor(q.dropped / 100) > Math.floor((q.dropped - dropped) / 100)) {
        this.deps.log.warn(
          `convos: ${this.label} has ${MAX_PENDING_TURNS_PER_CONVERSATION} messages waiting for the agent in ${group.id}; dropping the oldest (${q.dropped} so far)`,
        );
      }
    }
    if (!q.draining) q.draining = this.drain(group.id, q);
  }

  private async drain(conversationId: string, q: TurnQueue): Promise<void> {
    try {
      while (!this.stopped && !this.record.exit) {
        const next = q.pending.shift();
        if (!next) break;
        await this.runTurn(next.group, next.msg);
      }
    } finally {
      if (q.pending.length)
        this.deps.log.info(
          `convos: ${this.label} stopped with ${q.pending.length} message(s) still waiting; not answered`,
        );
      if (q.dropped)
        this.deps.log.warn(
          `convos: ${this.label} dropped ${q.dropped} waiting message(s) in ${conversationId} (queue full)`,
        );
      if (this.queues.get(conversationId) === q) this.queues.delete(conversationId);
    }
  }

  private async runTurn(group: XmtpGroup, msg: XmtpMessage): Promise<void> {
    const raw = msg.text ?? '';
    const text = capInboundText(raw);
    if (text !== raw)
      this.deps.log.warn(
        `convos: ${this.label} cut a message of ${raw.length} characters to ${MAX_INBOUND_MESSAGE_CHARS} for the agent`,
      );
    try {
      await this.deps.agent.dispatch(
        {
          conversationId: group.id,
          groupName: group.name(),
          messageId: msg.id,
          senderInboxId: msg.senderInboxId,
          text,
          sentAt: msg.sentAt,
        },
        async (reply) => {
          if (!reply.trim()) return;
          await group.sendText(reply);
          this.deps.onActivity?.();
        },
      );
    } catch (err) {
      this.deps.log.warn(
        `convos: ${this.label} agent turn failed: ${errText(err)}${process.env.CONVOS_DEBUG ? `\n${(err as Error)?.stack}` : ''}`,
      );
    }
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
    if (group?.kind !== 'group') return;
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
      this.deps.log.warn(
        `convos: ${this.label} denied a join request from ${msg.senderInboxId}: ${decision.reason}`,
      );
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
