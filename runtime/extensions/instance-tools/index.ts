import { definePluginEntry } from 'openclaw/plugin-sdk/plugin-entry';
import { requestPayment } from './src/payments.ts';
import { requestSend } from './src/send.ts';

/**
 * Narrow tools instead of a shell: the agent can send an email from its own inbox or an SMS from its own
 * number, and pay in USDC from the pool's wallet within its allowance, and nothing else. The gateway holds no provider key and no instance token: each tool posts to
 * the runtime's loopback outbound server (CONVOS_OUTBOUND_URL) with the gateway token, and the runtime
 * has the pool send it (src/outbound.ts). A tool is registered only when its inbox/number is set (the payment tools: when the pool pays,
 * POOL_PAYMENTS=on).
 */
function text(result: string) {
  return { content: [{ type: 'text' as const, text: result }], details: { result } };
}

export default definePluginEntry({
  id: 'instance-tools',
  name: 'Instance tools',
  description:
    "Email and SMS from this instance's own inbox and number, and payments in USDC, made by the pool.",
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
    if (env.POOL_PAYMENTS === 'on') {
      api.registerTool({
        name: 'payments_allowance',
        description:
          "How much you may still pay today (USDC on Base, from the pool's wallet), above which amount a payment needs a code confirmed in the chat, and the wallet's balances.",
        parameters: { type: 'object', additionalProperties: false, properties: {} },
        async execute() {
          return text(await requestPayment(outboundUrl, token, 'allowance', {}));
        },
      } as never);
      api.registerTool({
        name: 'send_usdc',
        description:
          'Pay an amount of US dollars in USDC on Base to one 0x address. Only when a person in the chat explicitly asks, for that amount and that address. Larger payments are held until a person in the chat says back a code.',
        parameters: {
          type: 'object',
          additionalProperties: false,
          required: ['to', 'amountUsd'],
          properties: {
            to: { type: 'string', description: 'The recipient: one 0x address (40 hex digits), on Base' },
            amountUsd: { type: 'string', description: 'Dollars as a decimal string, e.g. "12.50"' },
          },
        },
        async execute(_id: string, params: unknown) {
          return text(await requestPayment(outboundUrl, token, 'transfer', params));
        },
      } as never);
      api.registerTool({
        name: 'confirm_payment',
        description:
          'Send a held payment once a person in the chat has said back its six-digit code. Only with the code they wrote, never on your own.',
        parameters: {
          type: 'object',
          additionalProperties: false,
          required: ['paymentId', 'code'],
          properties: {
            paymentId: { type: 'string', description: 'The id send_usdc answered for the held payment' },
            code: { type: 'string', description: 'The six digits a person in the chat wrote' },
          },
        },
        async execute(_id: string, params: unknown) {
          return text(await requestPayment(outboundUrl, token, 'confirm', params));
        },
      } as never);
    }
  },
});
