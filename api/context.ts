/** What every route plugin gets: the database, Temporal, secrets and configuration (built by `system/`). */
import type { Client } from '@temporalio/client';
import type { Registry } from 'prom-client';
import type { Config } from '../config/env';
import type { InboxReader } from '../contracts/mail';
import type { EmailSender, LlmKeyAdmin, PaymentsProvider, SmsSender } from '../contracts/resources';
import type { InstanceSecrets } from '../contracts/secrets';
import type { Db } from '../drizzle/client';

export interface ApiContext {
  db: Db;
  temporal: Client;
  secrets: InstanceSecrets;
  config: Config;
  apiKey: string;
  /**
   * Sending on an instance's behalf with the pool's org-wide keys (`/api/pool/self/email|sms`). Absent →
   * those routes answer 409 `EMAIL_NOT_ENABLED` / `SMS_NOT_ENABLED`.
   */
  senders?: { email?: EmailSender; sms?: SmsSender };
  /**
   * Reading an instance's own inbox with the pool's org-wide key (`/api/pool/self/mail/…`). Absent → those
   * routes answer 409 `EMAIL_NOT_ENABLED`.
   */
  mail?: InboxReader;
  /**
   * The process's Prometheus registry (`GET /metrics`; built in `system/`). Absent → the app makes its own
   * (a test's app never shares counts with another).
   */
  metrics?: Registry;
  /**
   * Payments with the pool's Bankr account (`/api/pool/self/payments/*`). Absent → those routes answer 409
   * `PAYMENTS_NOT_ENABLED`.
   */
  payments?: PaymentsProvider;
  /** Per-instance LLM keys, for operators raising a cap (`PUT /api/pool/instances/:id/llm-limit`). */
  llmKeys?: LlmKeyAdmin;
}
