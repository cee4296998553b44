/** What every route plugin gets: the database, Temporal, secrets and configuration. */
import type { Client } from '@temporalio/client';
import type { EmailSender, SmsSender } from '../activities/providers/types';
import type { SecretStore } from '../activities/secret-store';
import type { Config } from '../config/env';
import type { Db } from '../drizzle/client';

export interface ApiContext {
  db: Db;
  temporal: Client;
  secrets: SecretStore;
  config: Config;
  apiKey: string;
  /**
   * Sending on an instance's behalf with the pool's org-wide keys (`/api/pool/self/email|sms`). Absent →
   * those routes answer 409 `EMAIL_NOT_ENABLED` / `SMS_NOT_ENABLED`.
   */
  senders?: { email?: EmailSender; sms?: SmsSender };
  /** Per-instance LLM keys, for operators raising a cap (`PUT /api/pool/instances/:id/llm-limit`). */
  llmKeys?: LlmKeyAdmin;
}

export interface LlmKeyAdmin {
  raiseLimit(ref: string, limitUsd: number): Promise<{ ref: string; limitUsd: number }>;
}
