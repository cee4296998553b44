/**
 * The per-instance resource providers this deployment uses, built from configuration. A provider without
 * its key is disabled, and the reason is recorded on every instance that would have used it.
 */
import { type Config, disabledReason } from '../../config/env';
import type { InboxReader } from '../../contracts/mail';
import type { EmailSender, PaymentsProvider, SmsSender } from '../../contracts/resources';
import type { Db } from '../../drizzle/client';
import type { ResourceProviders } from '../resources';
import { AgentMailInboxes } from './agentmail';
import { BankrPayments } from './bankr';
import { OpenRouterKeys } from './openrouter';
import { TelnyxNumbers } from './telnyx';
import type { DisabledProvider } from './types';
import { WalletKeys } from './wallet';

export interface BuiltProviders {
  resources: ResourceProviders;
  /** Org-wide senders the pool uses on an instance's behalf (the self-service proxy). */
  senders: { email?: EmailSender; sms?: SmsSender };
  /** Reading an instance's own inbox on its behalf (the self-service read routes). */
  mail?: InboxReader;
  /** The LLM key adapter, for operators raising an instance's cap. */
  llmKeys?: OpenRouterKeys;
}

export function buildProviders(config: Config, db: Db): BuiltProviders {
  const p = config.providers;
  const disabled: DisabledProvider[] = [];
  const off = (kind: DisabledProvider['kind'], name: 'openrouter' | 'agentmail' | 'telnyx' | 'wallet') =>
    disabled.push({ kind, name, reason: disabledReason(name) });

  const wallet = p.wallet ? new WalletKeys() : null;
  if (!wallet) off('wallet', 'wallet');
  const openrouter = p.openrouter
    ? new OpenRouterKeys({
        managementKey: p.openrouter.managementKey,
        monthlyLimitUsd: p.openrouter.monthlyLimitUsd,
        baseUrl: p.openrouter.baseUrl,
      })
    : null;
  if (!openrouter) off('llmKey', 'openrouter');
  const agentmail = p.agentmail
    ? new AgentMailInboxes({
        apiKey: p.agentmail.apiKey,
        baseUrl: p.agentmail.baseUrl,
        ...(p.agentmail.domain ? { domain: p.agentmail.domain } : {}),
      })
    : null;
  if (!agentmail) off('inbox', 'agentmail');
  const telnyx = p.telnyx
    ? new TelnyxNumbers({
        apiKey: p.telnyx.apiKey,
        messagingProfileId: p.telnyx.messagingProfileId,
        maxPooledNumbers: p.telnyx.maxPooledNumbers,
        baseUrl: p.telnyx.baseUrl,
        db,
      })
    : null;
  if (!telnyx) off('phone', 'telnyx');

  return {
    resources: {
      enabled: {
        ...(wallet ? { wallet } : {}),
        ...(openrouter ? { llmKey: openrouter } : {}),
        ...(agentmail ? { inbox: agentmail } : {}),
        ...(telnyx ? { phone: telnyx } : {}),
      },
      disabled,
    },
    senders: { ...(agentmail ? { email: agentmail } : {}), ...(telnyx ? { sms: telnyx } : {}) },
    ...(agentmail ? { mail: agentmail } : {}),
    ...(openrouter ? { llmKeys: openrouter } : {}),
  };
}

/** Payments with the pool's Bankr account (`/api/pool/self/payments/*`); none without BANKR_API_KEY. */
export function buildPayments(config: Config): PaymentsProvider | undefined {
  const bankr = config.providers.bankr;
  return bankr ? new BankrPayments({ apiKey: bankr.apiKey, baseUrl: bankr.baseUrl }) : undefined;
}
