/**
 * Registering the pool's inbound webhooks with the providers, once per account (`npm run webhooks:setup`,
 * scripts/webhooks-setup.ts): both are account-wide settings, not per-instance resources.
 *
 * - AgentMail: one webhook (`POST /v0/webhooks {url, event_types:['message.received'], client_id}`,
 *   https://docs.agentmail.to/api-reference/webhooks/create) to `<POOL_API_URL>/api/webhooks/agentmail`, for
 *   every inbox of the organization (the route routes by inbox). Found again by its `client_id` (AgentMail's
 *   create idempotency, as for inboxes) or its URL; an existing one is updated (`PATCH /v0/webhooks/{id}`).
 *   The answer carries the signing secret (`whsec_…`) to set as AGENTMAIL_WEBHOOK_SECRET.
 * - Telnyx: the messaging profile's `webhook_url` (`PATCH /v2/messaging_profiles/{id} {webhook_url,
 *   webhook_api_version:'2'}`, https://developers.telnyx.com/docs/messaging/messages/receive-message) to
 *   `<POOL_API_URL>/api/webhooks/telnyx`: every number of the pool is on that profile. Its deliveries are
 *   signed with the account's key, whose public half is TELNYX_PUBLIC_KEY (portal: Keys & Credentials).
 */
import { HttpClient } from './http';

export const AGENTMAIL_WEBHOOK_EVENTS = ['message.received'];

interface AgentMailWebhook {
  webhook_id: string;
  url: string;
  event_types?: string[];
  client_id?: string | null;
  secret?: string;
}

export async function registerAgentMailWebhook(opts: {
  apiKey: string;
  baseUrl: string;
  url: string;
  /** The webhook's client_id: one per pool deployment. */
  clientId: string;
  fetch?: typeof fetch;
}): Promise<{ webhookId: string; created: boolean; secret: string | null }> {
  const http = new HttpClient({
    baseUrl: opts.baseUrl.replace(/\/+$/, ''),
    provider: 'agentmail',
    headers: () => ({ authorization: `Bearer ${opts.apiKey}` }),
    fetch: opts.fetch,
  });
  const list = await http.request<{ webhooks?: AgentMailWebhook[] }>('GET', '/webhooks');
  const existing = (list?.webhooks ?? []).find((w) => w.client_id === opts.clientId || w.url === opts.url);
  if (existing) {
    const updated = await http.request<AgentMailWebhook>(
      'PATCH',
      `/webhooks/${encodeURIComponent(existing.webhook_id)}`,
      { body: { url: opts.url, event_types: AGENTMAIL_WEBHOOK_EVENTS } },
    );
    return {
      webhookId: existing.webhook_id,
      created: false,
      secret: updated?.secret ?? existing.secret ?? null,
    };
  }
  const created = await http.request<AgentMailWebhook>('POST', '/webhooks', {
    body: { url: opts.url, event_types: AGENTMAIL_WEBHOOK_EVENTS, client_id: opts.clientId },
  });
  return { webhookId: created.webhook_id, created: true, secret: created.secret ?? null };
}

export async function setTelnyxWebhookUrl(opts: {
  apiKey: string;
  baseUrl: string;
  messagingProfileId: string;
  url: string;
  fetch?: typeof fetch;
}): Promise<{ messagingProfileId: string; webhookUrl: string | null }> {
  const http = new HttpClient({
    baseUrl: opts.baseUrl.replace(/\/+$/, ''),
    provider: 'telnyx',
    headers: () => ({ authorization: `Bearer ${opts.apiKey}` }),
    fetch: opts.fetch,
  });
  const res = await http.request<{ data?: { id: string; webhook_url?: string | null } }>(
    'PATCH',
    `/messaging_profiles/${encodeURIComponent(opts.messagingProfileId)}`,
    { body: { webhook_url: opts.url, webhook_api_version: '2' } },
  );
  return { messagingProfileId: opts.messagingProfileId, webhookUrl: res?.data?.webhook_url ?? null };
}
