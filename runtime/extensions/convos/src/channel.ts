import { createChatChannelPlugin } from 'openclaw/plugin-sdk/channel-core';
import { waitUntilAbort } from 'openclaw/plugin-sdk/channel-outbound';
import { channelReadyPatch, channelStoppedPatch } from 'openclaw/plugin-sdk/gateway-runtime';
import { acquire, currentSettings, existingService, release } from './instance.js';
import { CHANNEL_ID, DEFAULT_ACCOUNT_ID } from './openclaw-bridge.js';
import type { ConvosSettings } from './settings.js';

/**
 * The `convos` ChannelPlugin: one account ("default") whose transport is the set of XMTP identities
 * under the state dir. startAccount starts them and stays pending until the gateway aborts it;
 * outbound sends run in the gateway process (deliveryMode "gateway"), where the XMTP clients live.
 */

interface ConvosAccount {
  accountId: string;
  enabled: boolean;
  configured: boolean;
  settings: ConvosSettings;
}

/** Targets are `convos:<groupId>` or a bare XMTP group id (hex). */
export function normalizeTarget(raw: string): string | undefined {
  const t = raw.trim().replace(/^convos:/i, '');
  return /^[0-9a-f]{16,128}$/i.test(t) ? t.toLowerCase() : undefined;
}

function resolveAccount(cfg: unknown, accountId?: string | null): ConvosAccount {
  const settings = currentSettings(cfg as never);
  return {
    accountId: accountId ?? DEFAULT_ACCOUNT_ID,
    enabled: settings.enabled,
    configured: settings.enabled,
    settings,
  };
}

export const convosChannelPlugin = createChatChannelPlugin<ConvosAccount>({
  base: {
    id: CHANNEL_ID,
    meta: {
      id: CHANNEL_ID,
      label: 'Convos',
      selectionLabel: 'Convos (XMTP)',
      docsPath: '/channels/convos',
      blurb: 'Private, end-to-end encrypted Convos group chats over XMTP.',
    },
    capabilities: { chatTypes: ['group'] },
    reload: { configPrefixes: ['channels.convos'] },
    config: {
      listAccountIds: () => [DEFAULT_ACCOUNT_ID],
      defaultAccountId: () => DEFAULT_ACCOUNT_ID,
      resolveAccount,
      inspectAccount: (cfg, accountId) => {
        const a = resolveAccount(cfg, accountId);
        return { enabled: a.enabled, configured: a.configured };
      },
      isEnabled: (account) => account.enabled,
      isConfigured: (account) => account.configured,
    },
    messaging: {
      normalizeTarget,
      inferTargetChatType: () => 'group',
      targetResolver: {
        looksLikeId: (raw: string) => normalizeTarget(raw) !== undefined,
        hint: '<xmtp-group-id>',
      },
    },
    // Everyone in the group was admitted by invite: the agent answers every message, not only mentions.
    groups: { resolveRequireMention: () => false },
    gateway: {
      startAccount: async (ctx) => {
        const { settings } = ctx.account;
        if (!settings.enabled) throw new Error(`convos channel is disabled: ${settings.reason}`);
        ctx.setStatus({
          accountId: ctx.accountId,
          running: true,
          lifecycle: 'starting',
          configured: true,
          enabled: true,
        });
        await acquire(settings);
        try {
          ctx.setStatus(channelReadyPatch({ accountId: ctx.accountId }));
          await waitUntilAbort(ctx.abortSignal);
        } finally {
          await release(settings);
          ctx.setStatus(channelStoppedPatch({ accountId: ctx.accountId }));
        }
      },
    },
  },
  outbound: {
    base: { deliveryMode: 'gateway' },
    attachedResults: {
      channel: CHANNEL_ID,
      sendText: async ({ to, text }) => {
        const conversationId = normalizeTarget(to);
        if (!conversationId) throw new Error(`not a convos target: ${to}`);
        const service = existingService(currentSettings());
        if (!service) throw new Error('convos channel is not running');
        return { messageId: await service.sendText(conversationId, text) };
      },
    },
  },
});
