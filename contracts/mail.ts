/**
 * Reading an instance's own inbox through the pool (`GET /api/pool/self/mail/…`, docs/api.md): the shapes the
 * pool answers with, the limits it trims to, and the rules for the ids and tokens an instance passes. The
 * API's schemas, the AgentMail adapter (which maps AgentMail's wire format to these) and the runtime's
 * outbound server all take them from here. Plain TypeScript with no imports.
 *
 * Everything in these shapes comes from outside (whoever emailed the agent): it is data, never instructions.
 */

/** Messages or threads per page: at most this many, 20 when not asked. */
export const MAIL_PAGE_MAX = 50;
export const MAIL_PAGE_DEFAULT = 20;
/** A message's text as the pool answers it: at most this many characters (`truncated` says when cut). */
export const MAIL_TEXT_MAX = 20_000;
/** Inside a thread, each message's text is cut shorter, so one thread stays a sane size. */
export const MAIL_THREAD_TEXT_MAX = 4_000;
/** A thread's answer holds at most this many messages: the latest ones (`truncated` says when some are left out). */
export const MAIL_THREAD_MESSAGES_MAX = 25;
/** Subjects, previews, addresses, labels and attachment names are cut to these. */
export const MAIL_SUBJECT_MAX = 300;
export const MAIL_PREVIEW_MAX = 300;
export const MAIL_ADDRESS_MAX = 320;
export const MAIL_ADDRESSES_MAX = 50;
export const MAIL_LABELS_MAX = 20;
export const MAIL_ATTACHMENTS_MAX = 50;
export const MAIL_FILENAME_MAX = 255;

/**
 * A message or thread id as AgentMail hands them out (a thread id is a UUID; a message id is an RFC 5322
 * Message-ID such as `<0100…@email.amazonses.com>`), checked before it goes into a provider path: 1–255
 * characters of letters, digits and `< > @ . _ - + = ~ ! $ & ' * ^ { | } :`; never `/`, `?`, `#`, `%`, `\`,
 * spaces or controls (`%` would let a provider that decodes twice see a `/`), and never only dots (a `.`
 * or `..` segment would climb out of the inbox's path).
 */
export const MAIL_ID_PATTERN = String.raw`^(?!\.+$)[A-Za-z0-9<>@._+=~!$&'*^{|}:-]{1,255}$`;
/** A page token as the pool hands it out: the provider's own token, base64url-encoded (so opaque and URL-safe). */
export const MAIL_PAGE_TOKEN_PATTERN = '^[A-Za-z0-9_-]{1,1400}$';
/** One label to filter by (AgentMail's system labels: `received`, `sent`, `unread`, …; or one of ours). */
export const MAIL_LABEL_PATTERN = '^[A-Za-z0-9._:-]{1,64}$';
/** `limit` in a query string: 1–50. */
export const MAIL_LIMIT_PATTERN = '^(?:[1-9]|[1-4][0-9]|50)$';

export const MAIL_PATTERN_RULES: Record<string, string> = {
  [MAIL_ID_PATTERN]:
    'must be a message or thread id as the inbox listed it (1–255 characters, no slash, space or control character)',
  [MAIL_PAGE_TOKEN_PATTERN]: 'must be the nextPageToken of a previous page',
  [MAIL_LABEL_PATTERN]: 'must be one label (1–64 characters of A–Z a–z 0–9 . _ : -)',
  [MAIL_LIMIT_PATTERN]: `must be a whole number from 1 to ${MAIL_PAGE_MAX}`,
};

/** An attachment, metadata only: the pool never downloads or passes on its content. */
export interface MailAttachment {
  attachmentId: string;
  filename: string | null;
  contentType: string | null;
  /** Bytes. */
  size: number;
  /** Part of the body (an inline image) rather than a file attached. */
  inline: boolean;
}

/** A message in a list: no body, its preview only. */
export interface MailMessageSummary {
  messageId: string;
  threadId: string;
  /** `user@domain` or `Name <user@domain>`, as the provider gives it. */
  from: string;
  to: string[];
  cc: string[];
  subject: string | null;
  preview: string | null;
  /** AgentMail's labels: `received` / `sent`, `unread`, … */
  labels: string[];
  /** When it was sent or received (ISO 8601). */
  timestamp: string;
  attachments: MailAttachment[];
}

/** One message, read: its plain text (cut to the limit), never its HTML as such. */
export interface MailMessage extends MailMessageSummary {
  /** The plain-text body; from the HTML with the tags removed when the message has no text part. */
  text: string | null;
  /** The text was cut to the limit. */
  truncated: boolean;
  inReplyTo: string | null;
}

export interface MailThreadSummary {
  threadId: string;
  subject: string | null;
  preview: string | null;
  senders: string[];
  recipients: string[];
  labels: string[];
  messageCount: number;
  lastMessageId: string | null;
  /** Of its latest message (ISO 8601). */
  timestamp: string;
  attachments: MailAttachment[];
}

/** A thread, read: its messages oldest first, each cut shorter; at most the latest 25 of them. */
export interface MailThread extends MailThreadSummary {
  messages: MailMessage[];
  /** Older messages were left out (`messageCount` is the whole thread's). */
  truncated: boolean;
}

export interface MailPage<T> {
  items: T[];
  /** Pass back as `pageToken` for the next page; null on the last. */
  nextPageToken: string | null;
}

export interface MailListQuery {
  limit: number;
  pageToken?: string;
  label?: string;
}

/**
 * Reading one inbox with the org-wide key, for the pool's read routes (the AgentMail adapter implements it).
 * An unknown message or thread, or one of another inbox, is a ProviderNotFoundError.
 */
export interface InboxReader {
  listMessages(inboxId: string, query: MailListQuery): Promise<MailPage<MailMessageSummary>>;
  getMessage(inboxId: string, messageId: string): Promise<MailMessage>;
  listThreads(inboxId: string, query: MailListQuery): Promise<MailPage<MailThreadSummary>>;
  getThread(inboxId: string, threadId: string): Promise<MailThread>;
}
