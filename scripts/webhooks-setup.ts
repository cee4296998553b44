/**
 * `npm run webhooks:setup`: registers the pool's inbound webhooks with AgentMail and Telnyx (once per
 * account, again after POOL_API_URL changes; safe to repeat), from the same environment as the API:
 * AGENTMAIL_API_KEY (+ AGENTMAIL_BASE_URL), TELNYX_API_KEY + TELNYX_MESSAGING_PROFILE_ID (+ TELNYX_BASE_URL),
 * and POOL_API_URL, the API's public URL the providers post to. Prints what to set next: the AgentMail
 * webhook's secret as AGENTMAIL_WEBHOOK_SECRET, and where TELNYX_PUBLIC_KEY comes from.
 */

import { registerAgentMailWebhook, setTelnyxWebhookUrl } from '../activities/providers/webhooks';
import { loadConfig } from '../config/env';

const config = loadConfig();
const base = config.api.publicUrl.replace(/\/+$/, '');
if (!/^https:\/\//.test(base))
  console.warn(`warning: POOL_API_URL is ${base}; the providers need a public https URL to reach the API`);
const { agentmail, telnyx } = config.providers;
if (!agentmail && !telnyx) {
  console.error('neither AGENTMAIL_API_KEY nor TELNYX_API_KEY is set: nothing to register');
  process.exit(2);
}
if (agentmail) {
  const url = `${base}/api/webhooks/agentmail`;
  const res = await registerAgentMailWebhook({
    apiKey: agentmail.apiKey,
    baseUrl: agentmail.baseUrl,
    url,
    clientId: `convos-webhook-${config.pool.name}`,
  });
  console.log(`AgentMail: webhook ${res.webhookId} ${res.created ? 'created' : 'updated'} → ${url}`);
  // The secret is printed once, for the operator to put in the API's environment; it is never logged.
  if (res.secret) console.log(`  set AGENTMAIL_WEBHOOK_SECRET=${res.secret}`);
  else console.log('  AgentMail did not return the secret again: keep the AGENTMAIL_WEBHOOK_SECRET you set');
}
if (telnyx) {
  const url = `${base}/api/webhooks/telnyx`;
  const res = await setTelnyxWebhookUrl({
    apiKey: telnyx.apiKey,
    baseUrl: telnyx.baseUrl,
    messagingProfileId: telnyx.messagingProfileId,
    url,
  });
  console.log(`Telnyx: messaging profile ${res.messagingProfileId} webhook_url → ${res.webhookUrl}`);
  console.log('  set TELNYX_PUBLIC_KEY to the account public key (portal → Keys & Credentials → Public Key)');
}
