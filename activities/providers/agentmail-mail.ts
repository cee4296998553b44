/**
 * AgentMail's messages and threads as the pool answers them (`contracts/mail.ts`): the wire format of
 * `GET /inboxes/{inbox_id}/messages[/{message_id}]` and `…/threads[/{thread_id}]`
 * (https://docs.agentmail.to/api-reference/inboxes/messages/list, …/messages/get, …/threads/list,
 * …/threads/get; field names as the `agentmail-node` SDK serializes them), mapped to our shapes and cut to
 * our limits. The provider's answer is not trusted to be tidy: missing fields become null or empty, lists
 * and strings are capped, and a message or thread of another inbox is refused (the caller answers 404).
 */
import {
  MAIL_ADDRESS_MAX,
  MAIL_ADDRESSES_MAX,
  MAIL_ATTACHMENTS_MAX,
  MAIL_FILENAME_MAX,
  MAIL_LABELS_MAX,
  MAIL_PREVIEW_MAX,
  MAIL_SUBJECT_MAX,
  MAIL_TEXT_MAX,
  MAIL_THREAD_MESSAGES_MAX,
  MAIL_THREAD_TEXT_MAX,
  type MailAttachment,
  type MailMessage,
  type MailMessageSummary,
  type MailPage,
  type MailThread,
  type MailThreadSummary,
} from '../../contracts/mail';
import { ProviderNotFoundError, ProviderUnavailableError } from '../../contracts/provider-errors';

/** An address as the API reference gives it (`Name <user@domain>`), or as the events page does (`{name, email}`). */
type RawAddress = string | { name?: string | null; email?: string | null };

export interface RawAttachment {
  attachment_id?: string;
  filename?: string | null;
  content_type?: string | null;
  size?: number;
  content_disposition?: string | null;
  content_id?: string | null;
  /** Older answers said `inline` instead of a content disposition. */
  inline?: boolean;
}

/** `MessageItem` (lists) and `Message` (one, with its bodies). */
export interface RawMessage {
  inbox_id?: string;
  thread_id?: string;
  message_id?: string;
  labels?: string[];
  timestamp?: string;
  from?: RawAddress | RawAddress[];
  to?: RawAddress[] | RawAddress;
  cc?: RawAddress[] | RawAddress | null;
  subject?: string | null;
  preview?: string | null;
  text?: string | null;
  html?: string | null;
  extracted_text?: string | null;
  extracted_html?: string | null;
  attachments?: RawAttachment[] | null;
  in_reply_to?: string | null;
  created_at?: string;
}

/** `ThreadItem` (lists) and `Thread` (one, with its messages oldest first). */
export interface RawThread {
  inbox_id?: string;
  thread_id?: string;
  labels?: string[];
  timestamp?: string;
  senders?: RawAddress[];
  recipients?: RawAddress[];
  subject?: string | null;
  preview?: string | null;
  attachments?: RawAttachment[] | null;
  last_message_id?: string | null;
  message_count?: number;
  created_at?: string;
  messages?: RawMessage[];
}

export interface RawPage {
  count?: number;
  limit?: number | null;
  next_page_token?: string | null;
  messages?: RawMessage[];
  threads?: RawThread[];
}

/** `value` cut to `max` characters, never inside a surrogate pair. */
export function cut(value: string, max: number): { text: string; cut: boolean } {
  if (value.length <= max) return { text: value, cut: false };
  let end = max;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return { text: value.slice(0, end), cut: true };
}

const short = (v: unknown, max: number): string | null =>
  typeof v === 'string' && v !== '' ? cut(v, max).text : null;

function address(v: unknown): string | null {
  if (typeof v === 'string') return short(v, MAIL_ADDRESS_MAX);
  if (v && typeof v === 'object') {
    const { name, email } = v as { name?: unknown; email?: unknown };
    if (typeof email !== 'string' || !email) return null;
    return short(typeof name === 'string' && name ? `${name} <${email}>` : email, MAIL_ADDRESS_MAX);
  }
  return null;
}

function addresses(v: unknown): string[] {
  const list = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  return list
    .map(address)
    .filter((a): a is string => a !== null)
    .slice(0, MAIL_ADDRESSES_MAX);
}

function labels(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v
    .filter((l): l is string => typeof l === 'string' && l !== '')
    .map((l) => cut(l, 64).text)
    .slice(0, MAIL_LABELS_MAX);
}

function attachments(v: unknown): MailAttachment[] {
  if (!Array.isArray(v)) return [];
  const out: MailAttachment[] = [];
  for (const a of v as RawAttachment[]) {
    if (!a || typeof a.attachment_id !== 'string' || !a.attachment_id) continue;
    out.push({
      attachmentId: cut(a.attachment_id, 255).text,
      filename: short(a.filename, MAIL_FILENAME_MAX),
      contentType: short(a.content_type, 255),
      size: typeof a.size === 'number' && Number.isFinite(a.size) && a.size >= 0 ? Math.floor(a.size) : 0,
      inline: a.content_disposition === 'inline' || a.inline === true,
    });
    if (out.length === MAIL_ATTACHMENTS_MAX) break;
  }
  return out;
}

const timestampOf = (...candidates: unknown[]): string => {
  for (const c of candidates) if (typeof c === 'string' && !Number.isNaN(Date.parse(c))) return c;
  return new Date(0).toISOString();
};

/** Readable text of an HTML body (only when the message has no text part): tags out, common entities decoded. */
export function htmlToText(html: string): string {
  const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
  return html
    .replace(/<(script|style|head)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<br\s*\/?>|<\/(p|div|li|tr|h[1-6])\s*>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#\d{1,7}|#x[0-9a-f]{1,6}|[a-z]+);/gi, (whole, name: string) => {
      if (name[0] === '#') {
        const code =
          name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
        return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff)
          ? String.fromCodePoint(code)
          : '';
      }
      return entities[name.toLowerCase()] ?? whole;
    })
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function bodyText(m: RawMessage): string | null {
  for (const t of [m.text, m.extracted_text]) if (typeof t === 'string' && t.trim()) return t;
  for (const h of [m.html, m.extracted_html]) if (typeof h === 'string' && h.trim()) return htmlToText(h);
  return null;
}

/** A message or thread of another inbox than the one asked for is not this inbox's: "not found". */
function ensureInbox(inboxId: string, got: unknown, what: string): void {
  if (typeof got === 'string' && got !== inboxId)
    throw new ProviderNotFoundError(`agentmail: ${what} is not in the inbox asked for`, 404);
}

export function messageSummary(inboxId: string, m: RawMessage): MailMessageSummary {
  if (!m || typeof m.message_id !== 'string' || typeof m.thread_id !== 'string')
    throw new ProviderUnavailableError('agentmail: a message without message_id or thread_id', null);
  ensureInbox(inboxId, m.inbox_id, 'the message');
  const from = Array.isArray(m.from) ? m.from[0] : m.from;
  return {
    messageId: m.message_id,
    threadId: m.thread_id,
    from: address(from) ?? '',
    to: addresses(m.to),
    cc: addresses(m.cc),
    subject: short(m.subject, MAIL_SUBJECT_MAX),
    preview: short(m.preview, MAIL_PREVIEW_MAX),
    labels: labels(m.labels),
    timestamp: timestampOf(m.timestamp, m.created_at),
    attachments: attachments(m.attachments),
  };
}

export function message(inboxId: string, m: RawMessage, textMax = MAIL_TEXT_MAX): MailMessage {
  const body = bodyText(m);
  const text = body === null ? null : cut(body, textMax);
  return {
    ...messageSummary(inboxId, m),
    text: text?.text ?? null,
    truncated: text?.cut ?? false,
    inReplyTo: short(m.in_reply_to, 998),
  };
}

export function threadSummary(inboxId: string, t: RawThread): MailThreadSummary {
  if (!t || typeof t.thread_id !== 'string')
    throw new ProviderUnavailableError('agentmail: a thread without thread_id', null);
  ensureInbox(inboxId, t.inbox_id, 'the thread');
  return {
    threadId: t.thread_id,
    subject: short(t.subject, MAIL_SUBJECT_MAX),
    preview: short(t.preview, MAIL_PREVIEW_MAX),
    senders: addresses(t.senders),
    recipients: addresses(t.recipients),
    labels: labels(t.labels),
    messageCount:
      typeof t.message_count === 'number' && t.message_count >= 0
        ? Math.floor(t.message_count)
        : (t.messages?.length ?? 0),
    lastMessageId: short(t.last_message_id, 998),
    timestamp: timestampOf(t.timestamp, t.created_at),
    attachments: attachments(t.attachments),
  };
}

/** The thread with its latest messages (oldest first), each cut to the thread's shorter text limit. */
export function thread(inboxId: string, t: RawThread): MailThread {
  const summary = threadSummary(inboxId, t);
  const all = (Array.isArray(t.messages) ? t.messages : [])
    .map((m) => message(inboxId, m, MAIL_THREAD_TEXT_MAX))
    .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
  const messages = all.slice(-MAIL_THREAD_MESSAGES_MAX);
  return { ...summary, messages, truncated: messages.length < all.length };
}

/**
 * Our page token for AgentMail's: its `next_page_token`, base64url-encoded, so whatever characters it holds
 * the token is one URL-safe word that our schema can check (and `providerPageToken` reverses).
 */
export function page<T>(raw: RawPage | null, items: T[]): MailPage<T> {
  const token = raw?.next_page_token;
  return {
    items,
    nextPageToken:
      typeof token === 'string' && token ? Buffer.from(token, 'utf8').toString('base64url') : null,
  };
}

export const providerPageToken = (token: string): string => Buffer.from(token, 'base64url').toString('utf8');
