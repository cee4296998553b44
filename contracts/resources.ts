/**
 * What the API uses of the per-instance resource providers, defined once for both sides: the metadata the
 * start saga records on each resource, and the org-wide operations the pool performs on an instance's
 * behalf (the adapters under `activities/providers/` implement them). Plain TypeScript with no imports.
 */

/** What `instance_resources.metadata` holds: facts for operators, the runtime's env, never a secret. */
export interface ResourceMetadata extends Record<string, unknown> {
  facts?: Record<string, string>;
  env?: Record<string, string>;
  /** The runtime variable that receives this resource's secret (the value is in the secret store). */
  secretEnv?: string;
  /** Why a kind was skipped. */
  reason?: string;
}

/** Sending on behalf of one instance with an org-wide key (the proxy endpoint): email and SMS. */
export interface EmailSender {
  sendEmail(
    inboxId: string,
    message: { to: string; subject: string; text: string },
  ): Promise<{ messageId: string }>;
}
export interface SmsSender {
  sendSms(from: string, message: { to: string; text: string }): Promise<{ messageId: string }>;
}

/** Per-instance LLM keys, for operators raising a cap (`PUT /api/pool/instances/:id/llm-limit`). */
export interface LlmKeyAdmin {
  raiseLimit(ref: string, limitUsd: number): Promise<{ ref: string; limitUsd: number }>;
}

/**
 * Payments with the pool's one Bankr account (its Wallet API, docs/providers.md "Bankr"): a read of the
 * portfolio and a USDC transfer on Base. The pool, never an instance, holds the key; the self-service
 * payment routes (cap, confirmation, audit) are built on this.
 */
export interface PaymentsProvider {
  /** Balances as Bankr answers them (its shape is not verified here: passed on, never interpreted). */
  portfolio(): Promise<unknown>;
  /** Sends `amountUsd` USDC (6 decimals) to a 0x address on Base; answers the transaction hash when given. */
  transferUsdc(to: string, amountUsd: string): Promise<{ txHash: string | null }>;
}
