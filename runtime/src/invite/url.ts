import { InviteError } from './errors.js';

/**
 * Where an invite code lives in the text people paste:
 *   https://popup.convos.org/v2?i=<slug>   production
 *   https://dev.convos.org/v2?i=<slug>     dev (also used by `local` XMTP networks)
 *   …?code=<slug>, convos://join/<slug>, or the raw slug.
 * Slugs get a `*` every 300 characters (iMessage breaks long unbroken tokens); decoders strip all `*`.
 */

/** Which XMTP network an invite belongs to; null when the text (raw slug, convos://) does not say. */
export type InviteEnv = 'dev' | 'production';
export type XmtpEnv = 'dev' | 'production' | 'local';

export const INVITE_HOSTS: Readonly<Record<InviteEnv, string>> = {
  production: 'popup.convos.org',
  dev: 'dev.convos.org',
};

const SEPARATOR_EVERY = 300;
const MAX_INPUT_CHARS = 16 * 1024;

export function insertSeparators(slug: string): string {
  const parts: string[] = [];
  for (let i = 0; i < slug.length; i += SEPARATOR_EVERY) parts.push(slug.slice(i, i + SEPARATOR_EVERY));
  return parts.join('*');
}

export function stripSeparators(slug: string): string {
  return slug.replace(/\*/g, '');
}

/** The invite URL for a network: `local` networks share the dev app. */
export function inviteUrlFor(slug: string, env: XmtpEnv): string {
  const host = env === 'production' ? INVITE_HOSTS.production : INVITE_HOSTS.dev;
  return `https://${host}/v2?i=${slug}`;
}

/** Whether an invite from `inviteEnv` can be joined by a client on `xmtpEnv` (null = unknown: allowed). */
export function inviteMatchesEnv(inviteEnv: InviteEnv | null, xmtpEnv: XmtpEnv): boolean {
  if (inviteEnv === null) return true;
  return inviteEnv === (xmtpEnv === 'production' ? 'production' : 'dev');
}

function envForHost(host: string): InviteEnv | null {
  const h = host.toLowerCase();
  if (h === INVITE_HOSTS.dev || h.endsWith(`.${INVITE_HOSTS.dev}`)) return 'dev';
  if (h === 'convos.org' || h.endsWith('.convos.org')) return 'production';
  return null;
}

/** Splits pasted text into the invite slug (separators removed) and the environment its URL names. */
export function extractSlug(input: string): { slug: string; env: InviteEnv | null } {
  const text = input.trim();
  if (text.length === 0) throw new InviteError('empty', 'invite is empty');
  if (text.length > MAX_INPUT_CHARS) throw new InviteError('unsupported_url', 'invite is too long');

  if (/^convos:\/\//i.test(text)) {
    const m = /^convos:\/\/join\/([^?#/]+)\/?(?:[?#].*)?$/i.exec(text);
    if (!m?.[1])
      throw new InviteError('unsupported_url', 'convos:// link is not of the form convos://join/<code>');
    return { slug: stripSeparators(decodeURIComponent(m[1])), env: null };
  }

  if (/^[a-z][a-z0-9+.-]*:/i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new InviteError('unsupported_url', 'invite link is not a valid URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new InviteError('unsupported_url', `invite link scheme ${url.protocol} is not supported`);
    }
    const env = envForHost(url.hostname);
    if (env === null) throw new InviteError('unsupported_url', `${url.hostname} is not a Convos invite host`);
    const slug = url.searchParams.get('i') ?? url.searchParams.get('code');
    if (!slug) throw new InviteError('unsupported_url', 'invite link has no ?i= or ?code= parameter');
    // URLSearchParams turns '+' (standard base64) into a space; put it back.
    return { slug: stripSeparators(slug.trim().replace(/ /g, '+')), env };
  }

  // A bare query string ("?code=…" or "i=…") pasted without a host.
  const q = /^\??(?:i|code)=([^&#\s]+)/.exec(text);
  if (q?.[1]) return { slug: stripSeparators(decodeURIComponent(q[1])), env: null };

  return { slug: stripSeparators(text), env: null };
}
