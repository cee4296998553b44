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

/** What one instance's LLM key has spent against its cap, as the key provider reports it (USD). */
export interface LlmKeyUsage {
  usageUsd: number;
  /** null: the key has no cap. */
  limitUsd: number | null;
  remainingUsd: number | null;
  /** daily, weekly, monthly, or null (the cap never resets). */
  limitReset: string | null;
  disabled: boolean;
}

/** The account's credits at the LLM key provider (USD): what was bought and what all keys spent. */
export interface LlmCredits {
  totalUsd: number;
  usedUsd: number;
}

/**
 * Per-instance LLM keys for operators: raising a cap (`PUT /api/pool/instances/:id/llm-limit`), reading a
 * key's usage (the instance detail) and the account's credits (`GET /api/pool/costs`).
 */
export interface LlmKeyAdmin {
  raiseLimit(ref: string, limitUsd: number): Promise<{ ref: string; limitUsd: number }>;
  usage(ref: string): Promise<LlmKeyUsage>;
  credits(): Promise<LlmCredits>;
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
