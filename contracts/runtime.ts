/**
 * The instance control server's contract (docs/runtime.md): what the pool sends to `POST /pool/provision` and
 * reads from it and from `GET /pool/health`. The runtime serves it, the pool's runtime client calls it; both
 * import these types from here. Plain TypeScript with no imports.
 */

/** `POST /pool/provision`: idempotent by `requestId` (the claim's Idempotency-Key). Rules: contracts/claim.ts. */
export interface ProvisionRequest {
  requestId: string;
  agentName: string;
  instructions: string;
  joinUrl?: string;
}

export const PROVISION_STATUSES = ['created', 'joined', 'waiting_for_acceptance'] as const;
export type ProvisionStatus = (typeof PROVISION_STATUSES)[number];

/** Its 200 answer. `inviteUrl` and `chatUrl` are bearer links: the pool keeps them in its secret store. */
export interface ProvisionResponse {
  conversationId: string | null;
  inviteUrl: string | null;
  joined: boolean;
  status: ProvisionStatus;
  /** Only without XMTP (`XMTP_ENV=off`): the instance's own chat page. */
  chatUrl?: string;
}

/** `GET /pool/health`: ready = gateway ready and (channel ready, or channel disabled). */
export interface RuntimeHealth {
  ready: boolean;
  gateway: 'starting' | 'ready' | 'down';
  channel: 'starting' | 'ready' | 'disabled' | 'error';
  version: string;
  /**
   * ISO time of the last message in any of this instance's conversations (a member's message received or a
   * reply sent, through the XMTP channel or the chat page), or null before any.
   */
  lastActivityAt: string | null;
}
