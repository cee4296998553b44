// Talks to the convos channel plugin inside the gateway (routes defined in runtime/CONTRACT.md).
import {
  CONVERSATION_EXITS,
  type ConversationExit,
  PROVISION_STATUSES,
  type ProvisionStatus,
} from '../../contracts/runtime.ts';
import type { ProvisionRequest, ProvisionResult } from './provision-store.ts';
import { NotDeliveredError } from './scheduler.ts';

export type ChannelState = 'starting' | 'ready' | 'disabled' | 'error';

/** The agent's conversation as the plugin reports it: what the control server tells the pool about. */
export interface ChannelConversation {
  requestId: string;
  conversationId: string | null;
  status: ProvisionStatus;
  exit: ConversationExit | null;
}

export interface ChannelStatus {
  state: Exclude<ChannelState, 'disabled'>;
  lastActivityAt: string | null;
  conversation: ChannelConversation | null;
}

/** The plugin's `conversation`, when it is one (anything else is no conversation). */
function parseConversation(raw: unknown): ChannelConversation | null {
  if (!raw || typeof raw !== 'object') return null;
  const c = raw as Record<string, unknown>;
  if (typeof c.requestId !== 'string' || !c.requestId) return null;
  if (!PROVISION_STATUSES.includes(c.status as ProvisionStatus)) return null;
  const exit = CONVERSATION_EXITS.includes(c.exit as ConversationExit) ? (c.exit as ConversationExit) : null;
  return {
    requestId: c.requestId,
    conversationId: typeof c.conversationId === 'string' && c.conversationId ? c.conversationId : null,
    status: c.status as ProvisionStatus,
    exit,
  };
}

export class ChannelError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class ChannelClient {
  constructor(
    private readonly gatewayUrl: string,
    private readonly gatewayToken: string,
  ) {}

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.gatewayToken}`, 'content-type': 'application/json' };
  }

  /**
   * The channel's own view; anything unexpected counts as "starting" until the gateway answers.
   * `lastActivityAt` is the plugin's last conversation message (a string it sent, checked by the caller).
   */
  async status(): Promise<ChannelStatus> {
    try {
      const res = await fetch(`${this.gatewayUrl}/convos/status`, {
        headers: this.headers(),
        signal: AbortSignal.timeout(3_000),
      });
      // The gateway's Control UI answers unknown paths with 200 HTML: only JSON with a known state counts.
      const body = (await res.json().catch(() => null)) as {
        state?: unknown;
        lastActivityAt?: unknown;
        conversation?: unknown;
      } | null;
      const state = body?.state;
      if (res.ok && (state === 'starting' || state === 'ready' || state === 'error')) {
        return {
          state,
          lastActivityAt: typeof body?.lastActivityAt === 'string' ? body.lastActivityAt : null,
          conversation: parseConversation(body?.conversation),
        };
      }
      return { state: 'starting', lastActivityAt: null, conversation: null };
    } catch {
      return { state: 'starting', lastActivityAt: null, conversation: null };
    }
  }

  async provision(request: ProvisionRequest, timeoutMs = 120_000): Promise<ProvisionResult> {
    const res = await fetch(`${this.gatewayUrl}/convos/provision`, {
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify(request),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
    if (!res.ok || !body) {
      const code = typeof body?.code === 'string' ? body.code : 'channel_error';
      const message = typeof body?.error === 'string' ? body.error : `channel answered ${res.status}`;
      throw new ChannelError(res.status, code, message);
    }
    const status = body.status;
    if (status !== 'created' && status !== 'joined' && status !== 'waiting_for_acceptance') {
      throw new ChannelError(502, 'channel_bad_response', 'channel returned an unknown status');
    }
    return {
      conversationId: typeof body.conversationId === 'string' ? body.conversationId : null,
      inviteUrl: typeof body.inviteUrl === 'string' ? body.inviteUrl : null,
      joined: body.joined === true,
      status,
    };
  }

  /**
   * Sends text into the agent's conversation through the channel (POST /convos/send): a scheduled message.
   * NotDeliveredError when the channel refused before sending (retryable: starting, the network failed;
   * permanent: not the agent's conversation, or it ended); any other error may have sent it.
   */
  async send(conversationId: string, text: string, timeoutMs = 30_000): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${this.gatewayUrl}/convos/send`, {
        method: 'POST',
        headers: this.headers(),
        body: JSON.stringify({ conversationId, text }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      // Refused connections never reached the gateway; a timeout may have sent it.
      if ((err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED')
        throw new NotDeliveredError('the gateway is not running');
      throw err;
    }
    if (res.ok) return;
    const body = (await res.json().catch(() => null)) as { code?: unknown; error?: unknown } | null;
    const reason = typeof body?.error === 'string' ? body.error : `channel answered ${res.status}`;
    if (body?.code === 'unknown_conversation' || body?.code === 'conversation_ended')
      throw new NotDeliveredError(reason, true);
    // Not ready, the network failed, or the route is not there yet (a gateway still starting): not sent.
    if (res.status === 503 || res.status === 404 || body?.code === 'send_failed')
      throw new NotDeliveredError(reason);
    throw new ChannelError(res.status, typeof body?.code === 'string' ? body.code : 'channel_error', reason);
  }
}
