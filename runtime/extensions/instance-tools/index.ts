import { definePluginEntry } from 'openclaw/plugin-sdk/plugin-entry';
import { requestMail } from './src/mail.ts';
import { messagesText, messageText, threadsText, threadText } from './src/mail-text.ts';
import { requestPayment } from './src/payments.ts';
import { conversationOf, SCHEDULE_TOOL_NAMES, scheduleTools, type TurnContext } from './src/schedule.ts';
import { requestSend } from './src/send.ts';

/**
 * Narrow tools instead of a shell: the agent can send an email from its own inbox or an SMS from its own
 * number, read its own inbox, pay in USDC from the pool's wallet within its allowance, and schedule messages in
 * the conversation it is talking in (src/schedule.ts), and nothing else.
 * The gateway holds no provider key and no instance token: each tool posts to the runtime's loopback outbound
 * server (CONVOS_OUTBOUND_URL) with the gateway token, and the runtime has the pool send, read or pay
 * (src/outbound.ts). A tool is registered only when its inbox/number is set (the payment tools: when the pool
 * pays, POOL_PAYMENTS=on); the schedule tools always, offered only in a turn of a Convos group or a chat page.
 */
function text(result: string) {
  return { content: [{ type: 'text' as const, text: result }], details: { result } };
}

export default definePluginEntry({
  id: 'instance-tools',
  name: 'Instance tools',
  description:
    "Email and SMS from this instance's own inbox and number, sent by the pool; its inbox, read through the pool; payments in USDC, made by the pool; messages scheduled in its own conversation.",
  register(api) {
    const env = process.env;
    const outboundUrl = env.CONVOS_OUTBOUND_URL;
    const token = env.OPENCLAW_GATEWAY_TOKEN;
    if (!outboundUrl || !token) return;
    for (const name of SCHEDULE_TOOL_NAMES) {
      api.registerTool(
        ((ctx: TurnContext) => {
          const conversation = conversationOf(ctx);
          return conversation ? scheduleTools(outboundUrl, token, conversation)[name] : null;
        }) as never,
        { names: [name] } as never,
      );
    }
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
    if (inbox) registerInboxTools(api, outboundUrl, token, inbox);
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

/** The tool's argument, if it is a string (the runtime validates it; a missing one is its `undefined`). */
const arg = (params: unknown, name: string): unknown =>
  params && typeof params === 'object' ? (params as Record<string, unknown>)[name] : undefined;

const listParameters = {
  limit: { type: 'integer', minimum: 1, maximum: 50, description: 'How many (1-50, default 20)' },
  page_token: { type: 'string', description: 'The "More" token of the previous list, for the next page' },
} as const;

/** Reading the agent's own inbox: lists of messages and threads, one message, one thread. */
function registerInboxTools(
  api: { registerTool(tool: never): void },
  outboundUrl: string,
  token: string,
  inbox: string,
) {
  api.registerTool({
    name: 'email_list_inbox',
    description: `List the emails in your inbox (${inbox}), newest first: sender, subject, preview and ids, no full text. Use email_read_message to read one.`,
    parameters: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...listParameters,
        unread_only: { type: 'boolean', description: 'Only messages not yet marked read' },
      },
    },
    async execute(_id: string, params: unknown) {
      const out = await requestMail(outboundUrl, token, {
        read: 'messages',
        ...listArgs(params),
        ...(arg(params, 'unread_only') === true ? { label: 'unread' } : {}),
      });
      return text(out.ok ? messagesText(inbox, out.result) : `Could not list the inbox: ${out.message}`);
    },
  } as never);
  api.registerTool({
    name: 'email_list_threads',
    description: `List the conversations (threads) in your inbox (${inbox}), latest first. Use email_read_thread to read one.`,
    parameters: { type: 'object', additionalProperties: false, properties: { ...listParameters } },
    async execute(_id: string, params: unknown) {
      const out = await requestMail(outboundUrl, token, { read: 'threads', ...listArgs(params) });
      return text(out.ok ? threadsText(inbox, out.result) : `Could not list the threads: ${out.message}`);
    },
  } as never);
  api.registerTool({
    name: 'email_read_message',
    description: `Read one email of your inbox (${inbox}) by its message_id from email_list_inbox: its full text and attachment names.`,
    parameters: {
      type: 'object',
      additionalProperties: false,
      required: ['message_id'],
      properties: { message_id: { type: 'string', description: 'The message_id exactly as listed' } },
    },
    async execute(_id: string, params: unknown) {
      const out = await requestMail(outboundUrl, token, {
        read: 'message',
        id: arg(params, 'message_id') as string,
      });
      return text(out.ok ? messageText(out.result) : `Could not read the message: ${out.message}`);
    },
  } as never);
  api.registerTool({
    name: 'email_read_thread',
    description: `Read one conversation of your inbox (${inbox}) by its thread_id: its latest messages, oldest first.`,
    parameters: {
      type: 'object',
      additionalProperties: false,
      required: ['thread_id'],
      properties: { thread_id: { type: 'string', description: 'The thread_id exactly as listed' } },
    },
    async execute(_id: string, params: unknown) {
      const out = await requestMail(outboundUrl, token, {
        read: 'thread',
        id: arg(params, 'thread_id') as string,
      });
      return text(out.ok ? threadText(out.result) : `Could not read the thread: ${out.message}`);
    },
  } as never);
}

function listArgs(params: unknown): { limit?: number; pageToken?: string } {
  const limit = arg(params, 'limit');
  const pageToken = arg(params, 'page_token');
  return {
    ...(limit !== undefined ? { limit: limit as number } : {}),
    ...(pageToken !== undefined ? { pageToken: pageToken as string } : {}),
  };
}
