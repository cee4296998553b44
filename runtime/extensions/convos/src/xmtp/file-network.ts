import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  type ConsentValue,
  type CreateGroupOptions,
  GROUP_UPDATED_CONTENT_TYPE,
  JOIN_REQUEST_CONTENT_TYPE,
  type JoinRequestContent,
  TEXT_CONTENT_TYPE,
  type XmtpClient,
  type XmtpClientFactory,
  type XmtpConversation,
  type XmtpDm,
  type XmtpGroup,
  type XmtpIdentityKeys,
  type XmtpMessage,
  type XmtpMessageStream,
} from './types.js';

/**
 * A stand-in XMTP network kept in a directory, shared by processes: lets an end-to-end test drive a
 * real OpenClaw gateway's convos channel from the test process (no XMTP network can run on these
 * machines). Selected only by CONVOS_TEST_NETWORK_DIR, which only tests set (the runtime hands it on to its
 * gateway). Not a security boundary and not fast: conversations are JSON files, messages are JSON lines,
 * streams poll. Membership changes are messages, as on XMTP: a member removed (or who left) gets the
 * `group_updated` message that removed it and keeps the group, inactive, with nothing after it.
 */

interface ConvFile {
  id: string;
  kind: 'group' | 'dm';
  name: string;
  appData: string;
  members: string[];
  consent: Record<string, ConsentValue>;
  /** Former members: where the message file stood right after the message that removed them (a byte offset). */
  removedAt?: Record<string, number>;
}

/** Whether `inboxId` sees the conversation: a member, or a former one (up to its removal). */
const readable = (c: ConvFile, inboxId: string) =>
  c.members.includes(inboxId) || c.removedAt?.[inboxId] !== undefined;

type StoredMessage = Omit<XmtpMessage, 'sentAt'> & { sentAt: string };

const POLL_MS = 100;

export class FileNetwork {
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'convs'), { recursive: true });
    mkdirSync(join(dir, 'msgs'), { recursive: true });
  }

  static inboxIdFor(walletKey: Uint8Array): string {
    return createHash('sha256').update(walletKey).digest('hex');
  }

  factory(): XmtpClientFactory {
    return {
      create: async (keys: XmtpIdentityKeys) => new FileClient(this, FileNetwork.inboxIdFor(keys.walletKey)),
    };
  }

  client(inboxId: string = randomBytes(32).toString('hex')): FileClient {
    return new FileClient(this, inboxId);
  }

  read(id: string): ConvFile | undefined {
    const f = join(this.dir, 'convs', `${id}.json`);
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as ConvFile) : undefined;
  }

  write(c: ConvFile): void {
    const f = join(this.dir, 'convs', `${c.id}.json`);
    writeFileSync(`${f}.${process.pid}.tmp`, JSON.stringify(c));
    renameSync(`${f}.${process.pid}.tmp`, f);
  }

  update(id: string, fn: (c: ConvFile) => void): void {
    const c = this.read(id);
    if (!c) throw new Error('conversation not found');
    fn(c);
    this.write(c);
  }

  all(): ConvFile[] {
    return readdirSync(join(this.dir, 'convs'))
      .filter((n) => n.endsWith('.json'))
      .map((n) => this.read(n.slice(0, -5)))
      .filter((c): c is ConvFile => Boolean(c));
  }

  msgFile(id: string): string {
    return join(this.dir, 'msgs', `${id}.jsonl`);
  }

  append(m: XmtpMessage): void {
    appendFileSync(
      this.msgFile(m.conversationId),
      `${JSON.stringify({ ...m, sentAt: m.sentAt.toISOString() })}\n`,
    );
  }

  /** Messages of a conversation after byte offset `from` (up to offset `until`), and the new offset. */
  readFrom(
    id: string,
    from: number,
    until = Number.POSITIVE_INFINITY,
  ): { messages: XmtpMessage[]; offset: number } {
    const f = this.msgFile(id);
    if (!existsSync(f)) return { messages: [], offset: from };
    const buf = readFileSync(f);
    // Only complete lines: a concurrent append may be half written.
    const end = Math.min(buf.lastIndexOf(0x0a) + 1, until);
    if (end <= from) return { messages: [], offset: from };
    const messages = buf
      .subarray(from, end)
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const s = JSON.parse(l) as StoredMessage;
        return { ...s, sentAt: new Date(s.sentAt) };
      });
    return { messages, offset: end };
  }

  size(id: string): number {
    const f = this.msgFile(id);
    return existsSync(f) ? statSync(f).size : 0;
  }
}

export class FileClient implements XmtpClient {
  constructor(
    readonly net: FileNetwork,
    readonly inboxId: string,
  ) {}

  view(c: ConvFile): XmtpConversation {
    return c.kind === 'group'
      ? new FileGroup(this.net, c.id, this.inboxId)
      : new FileDm(this.net, c.id, this.inboxId);
  }

  async createGroup(inboxIds: string[], o: CreateGroupOptions): Promise<XmtpGroup> {
    const c: ConvFile = {
      id: randomBytes(16).toString('hex'),
      kind: 'group',
      name: o.groupName ?? '',
      appData: o.appData ?? '',
      members: [this.inboxId, ...inboxIds],
      consent: { [this.inboxId]: 'allowed' },
    };
    this.net.write(c);
    return new FileGroup(this.net, c.id, this.inboxId);
  }

  async createDm(inboxId: string): Promise<XmtpDm> {
    const existing = this.net
      .all()
      .find((c) => c.kind === 'dm' && c.members.includes(this.inboxId) && c.members.includes(inboxId));
    const c: ConvFile = existing ?? {
      id: randomBytes(16).toString('hex'),
      kind: 'dm',
      name: '',
      appData: '',
      members: [this.inboxId, inboxId],
      consent: { [this.inboxId]: 'allowed' },
    };
    if (!existing) this.net.write(c);
    return new FileDm(this.net, c.id, this.inboxId);
  }

  async listConversations(): Promise<XmtpConversation[]> {
    return this.net
      .all()
      .filter((c) => readable(c, this.inboxId))
      .map((c) => this.view(c));
  }

  async getConversationById(id: string): Promise<XmtpConversation | undefined> {
    const c = this.net.read(id);
    return c && readable(c, this.inboxId) ? this.view(c) : undefined;
  }

  async syncAll(): Promise<void> {}

  async streamAllMessages(): Promise<XmtpMessageStream> {
    const offsets = new Map<string, number>();
    // Conversations we already know stream from now on; ones that appear later stream from their start.
    for (const c of this.net.all()) if (readable(c, this.inboxId)) offsets.set(c.id, this.net.size(c.id));
    let done = false;
    const net = this.net;
    const inboxId = this.inboxId;
    let wake: (() => void) | undefined;
    return {
      end: async () => {
        done = true;
        wake?.();
      },
      async *[Symbol.asyncIterator]() {
        while (!done) {
          for (const c of net.all()) {
            if (!readable(c, inboxId)) continue;
            const until = c.members.includes(inboxId) ? undefined : c.removedAt?.[inboxId];
            const { messages, offset } = net.readFrom(c.id, offsets.get(c.id) ?? 0, until);
            offsets.set(c.id, offset);
            for (const m of messages) {
              if (done) return;
              yield m;
            }
          }
          await new Promise<void>((r) => {
            const t = setTimeout(r, POLL_MS);
            wake = () => {
              clearTimeout(t);
              r();
            };
          });
        }
      },
    };
  }

  async close(): Promise<void> {}
}

class FileConversation {
  constructor(
    protected readonly net: FileNetwork,
    readonly id: string,
    protected readonly self: string,
  ) {}

  /** The conversation as we see it (also once removed from it). */
  protected conv(): ConvFile {
    const c = this.net.read(this.id);
    if (!c || !readable(c, this.self)) throw new Error('not a member');
    return c;
  }

  protected post(m: Pick<XmtpMessage, 'contentType'> & Partial<XmtpMessage>): string {
    if (!this.conv().members.includes(this.self)) throw new Error('not a member');
    const id = randomBytes(8).toString('hex');
    this.net.append({ ...m, id, conversationId: this.id, senderInboxId: this.self, sentAt: new Date() });
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

  consent(): ConsentValue {
    return this.net.read(this.id)?.consent[this.self] ?? 'unknown';
  }

  async setConsent(state: 'allowed' | 'denied'): Promise<void> {
    this.net.update(this.id, (c) => {
      c.consent[this.self] = state;
    });
  }

  async sync(): Promise<void> {}

  async messages(): Promise<XmtpMessage[]> {
    return this.net.readFrom(this.id, 0).messages;
  }
}

export class FileGroup extends FileConversation implements XmtpGroup {
  readonly kind = 'group' as const;

  name(): string {
    return this.conv().name;
  }

  appData(): string {
    return this.conv().appData;
  }

  async updateAppData(appData: string): Promise<void> {
    this.net.update(this.id, (c) => {
      c.appData = appData;
    });
  }

  async addMembers(inboxIds: string[]): Promise<void> {
    this.net.update(this.id, (c) => {
      for (const i of inboxIds) if (!c.members.includes(i)) c.members.push(i);
    });
  }

  async memberInboxIds(): Promise<string[]> {
    return this.conv().members;
  }

  isActive(): boolean {
    return this.net.read(this.id)?.members.includes(this.self) ?? false;
  }

  async leave(): Promise<void> {
    this.changeMembers({ removedInboxIds: [], leftInboxIds: [this.self] });
  }

  /** Test helper (the person's side): we, an admin, remove members. */
  async removeMembers(inboxIds: string[]): Promise<void> {
    this.changeMembers({ removedInboxIds: inboxIds, leftInboxIds: [] });
  }

  /** The `group_updated` message of a membership change, then the change: those who go read up to it. */
  private changeMembers(update: { removedInboxIds: string[]; leftInboxIds: string[] }): void {
    this.post({ contentType: GROUP_UPDATED_CONTENT_TYPE, groupUpdated: update });
    const gone = [...update.removedInboxIds, ...update.leftInboxIds];
    const at = this.net.size(this.id);
    this.net.update(this.id, (c) => {
      c.members = c.members.filter((m) => !gone.includes(m));
      c.removedAt = { ...c.removedAt, ...Object.fromEntries(gone.map((m) => [m, at])) };
    });
  }
}

export class FileDm extends FileConversation implements XmtpDm {
  readonly kind = 'dm' as const;

  async peerInboxId(): Promise<string> {
    return this.conv().members.find((m) => m !== this.self) ?? this.self;
  }
}
