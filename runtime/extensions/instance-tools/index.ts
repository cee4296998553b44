import { definePluginEntry } from 'openclaw/plugin-sdk/plugin-entry';
import { requestSend } from './src/send.ts';

/**
 * Narrow tools instead of a shell: the agent can send an email from its own inbox or an SMS from its own
 * number, and nothing else. The gateway holds no provider key and no instance token: each tool posts to
 * the runtime's loopback outbound server (CONVOS_OUTBOUND_URL) with the gateway token, and the runtime
 * has the pool send it (src/outbound.ts). A tool is registered only when its inbox/number is set.
 */
function text(result: string) {
  return { content: [{ type: 'text' as const, text: result }], details: { result } };
}

export default definePluginEntry({
  id: 'instance-tools',
  name: 'Instance tools',
  description: "Email and SMS from this instance's own inbox and number, sent by the pool.",
  register(api) {
    const env = process.env;
    const outboundUrl = env.CONVOS_OUTBOUND_URL;
    const token = env.OPENCLAW_GATEWAY_TOKEN;
    if (!outboundUrl || !token) return;
    const inbox = env.AGENTMAIL_INBOX_ID;
    if (inbox) {
      api.registerTool({
        name: 'send_email',
        description: `Send one plain-text email from your inbox (${inbox}). Only when someone in the chat asks for it.`,
        parameters: {
          type: 'object',
          additionalProperties: false,
          required: ['to', 'subject', 'text'],
          properties: {
            to: { type: 'string', description: 'One recipient email address' },
            subject: { type: 'string', description: 'Subject line (at most 200 characters)' },
            text: { type: 'string', description: 'Plain-text body (at most 10000 characters)' },
          },
        },
        async execute(_id: string, params: unknown) {
          const out = await requestSend(outboundUrl, token, 'email', params);
          const to = (params as { to?: unknown } | null)?.to;
          return text(out.sent ? `Email sent to ${String(to)} from ${inbox}.` : `Not sent: ${out.message}`);
        },
      } as never);
    }
    const number = env.TELNYX_PHONE_NUMBER;
    if (number) {
      api.registerTool({
        name: 'send_sms',
        description: `Send one SMS from your phone number (${number}). Only when someone in the chat asks for it.`,
        parameters: {
          type: 'object',
          additionalProperties: false,
          required: ['to', 'text'],
          properties: {
            to: { type: 'string', description: 'Recipient phone number in E.164 form, e.g. +15551234567' },
            text: { type: 'string', description: 'Message text (at most 1600 characters)' },
          },
        },
        async execute(_id: string, params: unknown) {
          const out = await requestSend(outboundUrl, token, 'sms', params);
          const to = (params as { to?: unknown } | null)?.to;
          return text(out.sent ? `SMS sent to ${String(to)} from ${number}.` : `Not sent: ${out.message}`);
        },
      } as never);
    }
  },
});
