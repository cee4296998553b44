import {
  createInvite,
  decodeAppData,
  encodeAppData,
  generateInviteTag,
  InviteError,
  inviteMatchesEnv,
  parseInviteUrl,
  verifyInvite,
} from '../../../src/invite/index.js';
import { type AgentBridge, type Log, silentLog } from './agent.js';
import { type BackoffOptions, DEFAULT_BACKOFF } from './backoff.js';
import type { ConversationExit } from './conversation-exit.js';
import { errText, IdentityRunner } from './identity-runner.js';
import { type IdentityRecord, IdentityStore, keysOf, type ProvisionStatus } from './identity-store.js';
import type { XmtpClientFactory, XmtpEnv } from './xmtp/types.js';

/**
 * The convos channel's engine, independent of OpenClaw: owns the identities under one state dir,
 * provisions conversations (create, or join by invite) idempotently by requestId, and keeps every
 * identity's runner going. OpenClaw wiring (channel.ts, routes.ts) and tests drive it the same way.
 */

export type ChannelState = 'starting' | 'ready' | 'error';

export interface ProvisionRequest {
  requestId: string;
  agentName: string;
  instructions: string;
  joinUrl?: string;
}

export interface ProvisionResult {
  conversationId: string | null;
  inviteUrl: string | null;
  joined: boolean;
  status: ProvisionStatus;
}

/**
 * The agent's one conversation as `GET /convos/status` reports it (runtime/CONTRACT.md): the control server
 * tells the pool when a join is accepted and when the conversation ended for the agent.
 */
export interface ConversationReport {
  requestId: string;
  conversationId: string | null;
  status: ProvisionStatus;
  exit: ConversationExit | null;
}

/** A provision failure with the HTTP status and code the route should answer with. */
export class ProvisionError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProvisionError';
  }
}

export interface ServiceOptions {
  stateDir: string;
  env: XmtpEnv;
  factory: XmtpClientFactory;
  agent: AgentBridge;
  log?: Log;
  now?: () => Date;
  backoff?: BackoffOptions;
  /** Bounded wait for the creator to accept a join before answering waiting_for_acceptance. */
  joinWaitMs?: number;
  joinPollMs?: number;
}

export class ConvosService {
  private state: ChannelState = 'starting';
  /** In memory only: the control server keeps (and persists) the latest value it has seen. */
  private lastActivity: Date | undefined;
  private lastError: string | undefined;
  private readonly store: IdentityStore;
  private readonly runners = new Map<string, IdentityRunner>();
  private readonly inflight = new Map<string, Promise<ProvisionResult>>();
  /** Provisions run one at a time: "one conversation per agent" is decided against settled state. */
  private provisionChain: Promise<unknown> = Promise.resolve();
  private starting: Promise<void> | undefined;
  private readonly log: Log;
  /** Where runner loops start (see setTaskContext). */
  private spawn: (fn: () => void) => void = (fn) => fn();

  constructor(private readonly o: ServiceOptions) {
    this.store = new IdentityStore(o.stateDir);
    this.log = o.log ?? silentLog;
  }

  /**
   * Runs every runner loop (streams, agent turns) inside the given context. OpenClaw scopes its state
   * database locks with AsyncLocalStorage: a turn dispatched from a context that has ended (say, the
   * HTTP request that provisioned the conversation) fails with "another OpenClaw process owns
   * state-lifecycle". The channel passes its startAccount context, which lives as long as the account.
   */
  setTaskContext(spawn: (fn: () => void) => void): void {
    this.spawn = spawn;
  }

  /** The agent bridge can be replaced on plugin reload (the new module's runtime). */
  setAgent(agent: AgentBridge): void {
    this.o.agent = agent;
  }

  /**
   * ISO time of the last message in any of our conversations (a member's message received, or a reply
   * sent by the agent), by this process's clock at receipt/send; null before any since this start.
   */
  lastActivityAt(): string | null {
    return this.lastActivity?.toISOString() ?? null;
  }

  /** Messages waiting for an agent turn, and those dropped because a conversation's queue was full. */
  turnStats(): { pending: number; dropped: number } {
    const stats = { pending: 0, dropped: 0 };
    for (const r of this.runners.values()) {
      const s = r.turnStats();
      stats.pending += s.pending;
      stats.dropped += s.dropped;
    }
    return stats;
  }

  status(): { state: ChannelState; error?: string } {
    return this.lastError && this.state === 'error'
      ? { state: this.state, error: this.lastError }
      : { state: this.state };
  }

  /** Loads identities and starts their runners. Idempotent; ready does not wait for the network. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      try {
        await this.store.init();
        for (const r of await this.store.list()) {
          if (r.status === 'pending') continue; // finished by a repeat provision with its requestId
          const runner = this.runnerFor(r);
          this.spawn(() => runner.start());
        }
        this.state = 'ready';
      } catch (err) {
        this.state = 'error';
        this.lastError = errText(err);
        this.log.error(`convos: start failed: ${this.lastError}`);
        this.starting = undefined;
        throw err;
      }
    })();
    return this.starting;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.runners.values()].map((r) => r.stop()));
    this.runners.clear();
    this.starting = undefined;
    this.state = 'starting';
  }

  private runnerFor(r: IdentityRecord): IdentityRunner {
    let runner = this.runners.get(r.id);
    if (!runner) {
      runner = new IdentityRunner(r, {
        factory: this.o.factory,
        store: this.store,
        agent: { dispatch: (m, reply) => this.o.agent.dispatch(m, reply) },
        log: this.log,
        now: this.o.now ?? (() => new Date()),
        backoff: this.o.backoff ?? DEFAULT_BACKOFF,
        joinPollMs: this.o.joinPollMs ?? 1000,
        onActivity: () => {
          this.lastActivity = (this.o.now ?? (() => new Date()))();
        },
      });
      this.runners.set(r.id, runner);
    }
    return runner;
  }

  /** The provisioned conversation (an instance has at most one), or null before any provision. */
  conversation(): ConversationReport | null {
    for (const r of this.runners.values()) {
      const { record } = r;
      return {
        requestId: record.requestId,
        conversationId: record.conversationId ?? null,
        status: record.status === 'pending' ? 'waiting_for_acceptance' : record.status,
        exit: record.exit?.reason ?? null,
      };
    }
    return null;
  }

  /** The agent leaves its conversation (its leave_conversation tool). */
  async leave(): Promise<{ left: boolean; error?: string }> {
    const runner = [...this.runners.values()].find((r) => r.record.conversationId);
    if (!runner) throw new Error('this agent is in no conversation');
    return runner.leave();
  }

  /** Sends text into a conversation held by one of our identities (outbound delivery). */
  async sendText(conversationId: string, text: string): Promise<string> {
    const runner = [...this.runners.values()].find((r) => r.record.conversationId === conversationId);
    if (!runner) throw new Error(`no convos identity holds conversation ${conversationId}`);
    return runner.sendText(conversationId, text);
  }

  provision(req: ProvisionRequest): Promise<ProvisionResult> {
    const existing = this.inflight.get(req.requestId);
    if (existing) return existing;
    const p = this.provisionChain.then(() => this.provisionSerial(req));
    this.provisionChain = p.catch(() => {});
    this.inflight.set(req.requestId, p);
    // A failed attempt may be retried with the same requestId (it resumes the same identity).
    void p.then(
      () => this.inflight.delete(req.requestId),
      () => this.inflight.delete(req.requestId),
    );
    return p;
  }

  private async provisionSerial(req: ProvisionRequest): Promise<ProvisionResult> {
    if (this.state !== 'ready') await this.start();
    const all = await this.store.list();
    const record = all.find((r) => r.requestId === req.requestId);
    if (!record) {
      // Bad input is the caller's error (400) whatever state the instance is in.
      if (req.joinUrl) parseJoinUrl(req.joinUrl, this.o.env, this.o.now?.() ?? new Date());
      const other = all.find((r) => r.requestId !== req.requestId);
      if (other) {
        throw new ProvisionError(
          409,
          'already_provisioned',
          'this instance already has a conversation for another request',
        );
      }
    }
    if (req.joinUrl) return this.provisionJoin(req, record);
    if (record && record.role !== 'creator') {
      throw new ProvisionError(409, 'request_mismatch', 'this requestId was used to join a conversation');
    }
    return this.provisionCreate(req, record);
  }

  private result(r: IdentityRecord): ProvisionResult {
    const status: ProvisionStatus = r.status === 'pending' ? 'waiting_for_acceptance' : r.status;
    return {
      conversationId: r.conversationId ?? null,
      inviteUrl: r.inviteUrl ?? null,
      joined: status === 'joined',
      status,
    };
  }

  private async provisionCreate(
    req: ProvisionRequest,
    existing: IdentityRecord | undefined,
  ): Promise<ProvisionResult> {
    if (existing?.status === 'created') return this.result(existing);
    // Saved before any network call: a retry after a crash reuses this identity instead of minting another.
    const record =
      existing ??
      this.store.newIdentity({
        requestId: req.requestId,
        role: 'creator',
        env: this.o.env,
        agentName: req.agentName,
      });
    if (!existing) await this.store.save(record);
    const runner = this.runnerFor(record);
    const client = await this.connectOrFail(runner);
    if (!runner.record.inboxId) await runner.save({ inboxId: client.inboxId });
    const inboxId = client.inboxId;

    // The identity is fresh, so any group it has is the one an interrupted attempt created.
    await client.syncAll();
    let group = (await client.listConversations()).find((c) => c.kind === 'group');
    if (!group) {
      const tag = generateInviteTag();
      group = await client.createGroup([], {
        groupName: req.agentName,
        appData: encodeAppData({ tag, profiles: [{ inboxId, name: req.agentName }] }),
      });
    }
    if (group.kind !== 'group') throw new Error('unreachable');
    const tag = parseTag(group.appData());
    const invite = createInvite({
      conversationId: group.id,
      creatorInboxId: inboxId,
      walletPrivateKey: keysOf(runner.record).walletKey,
      tag,
      env: this.o.env,
      name: req.agentName,
    });
    await runner.save({ conversationId: group.id, inviteUrl: invite.url, status: 'created' });
    this.spawn(() => runner.start());
    this.log.info(`convos: created conversation ${group.id} (${runner.label})`);
    return this.result(runner.record);
  }

  private async provisionJoin(
    req: ProvisionRequest,
    existing: IdentityRecord | undefined,
  ): Promise<ProvisionResult> {
    if (existing && existing.role !== 'joiner') {
      throw new ProvisionError(409, 'request_mismatch', 'this requestId was used to create a conversation');
    }
    if (existing?.status === 'joined') return this.result(existing);
    const invite = parseJoinUrl(req.joinUrl ?? '', this.o.env, this.o.now?.() ?? new Date());
    const record = existing ?? {
      ...this.store.newIdentity({
        requestId: req.requestId,
        role: 'joiner',
        env: this.o.env,
        agentName: req.agentName,
      }),
      inviteUrl: req.joinUrl ?? '',
      inviteTag: invite.tag,
    };
    if (!existing) await this.store.save(record);
    const runner = this.runnerFor(record);
    const client = await this.connectOrFail(runner);
    if (!runner.record.inboxId) await runner.save({ inboxId: client.inboxId });

    if (runner.record.status === 'pending') {
      // Both forms: the structured request for current apps, the bare slug for older ones.
      const dm = await client.createDm(invite.creatorInboxId);
      await dm.sendJoinRequest({
        inviteSlug: invite.slug,
        profile: { name: req.agentName, memberKind: 'agent' },
      });
      await dm.sendText(invite.slug);
      await runner.save({ status: 'waiting_for_acceptance' });
    }
    this.spawn(() => runner.start());
    const joined = await runner.waitForJoin(this.o.joinWaitMs ?? 15_000);
    this.log.info(`convos: join ${joined ? 'accepted' : 'waiting for acceptance'} (${runner.label})`);
    return this.result(runner.record);
  }

  private async connectOrFail(runner: IdentityRunner) {
    try {
      return await runner.connect();
    } catch (err) {
      throw new ProvisionError(503, 'xmtp_unavailable', `could not reach the XMTP network: ${errText(err)}`);
    }
  }
}

function parseTag(appData: string): string {
  let tag = '';
  try {
    tag = decodeAppData(appData).tag;
  } catch {
    // handled below
  }
  if (!tag) throw new Error('group has no invite tag in its metadata');
  return tag;
}

/** Validates a joinUrl for this network; a bad one is the caller's error (400), never a crash. */
export function parseJoinUrl(joinUrl: string, env: XmtpEnv, now: Date) {
  try {
    const invite = parseInviteUrl(joinUrl);
    if (!inviteMatchesEnv(invite.env, env)) {
      throw new ProvisionError(
        400,
        'wrong_environment',
        `this invite is for the ${invite.env} network, this instance is on ${env}`,
      );
    }
    verifyInvite(invite, { now });
    return invite;
  } catch (err) {
    if (err instanceof InviteError) throw new ProvisionError(400, `invite_${err.code}`, err.message);
    throw err;
  }
}
