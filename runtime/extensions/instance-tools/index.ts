import { definePluginEntry } from 'openclaw/plugin-sdk/plugin-entry';
import { requestMail } from './src/mail.ts';
import { messagesText, messageText, threadsText, threadText } from './src/mail-text.ts';
import { requestSend } from './src/send.ts';

/**
 * Narrow tools instead of a shell: the agent can send an email from its own inbox or an SMS from its own
 * number, and read its own inbox, and nothing else. The gateway holds no provider key and no instance
 * token: each tool posts to the runtime's loopback outbound server (CONVOS_OUTBOUND_URL) with the gateway
 * token, and the runtime has the pool send or read (src/outbound.ts). A tool is registered only when its
 * inbox/number is set.
 */
function text(result: string) {
  return { content: [{ type: 'text' as const, text: result }], details: { result } };
}

export default definePluginEntry({
  id: 'instance-tools',
  name: 'Instance tools',
  description:
    "Email and SMS from this instance's own inbox and number, sent by the pool; its inbox, read through the pool.",
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
