// Shape check for Convos invite URLs (the forms runtime/src/invite/url.ts decodes). Shared by the browser
// (instant feedback) and the server (reject before calling the API). The API does the real
// decoding and signature checks; this only catches obviously wrong input. The characters and length allowed
// are the shared claim contract's (`contracts/claim.ts`, loaded in the browser too: it has no imports).
import { JOIN_URL_MAX, joinUrlProblem } from '../../../contracts/claim';

const SLUG_RE = /^[A-Za-z0-9_*-]{16,8192}$/;
const INVITE_HOSTS = new Set(['popup.convos.org', 'dev.convos.org']);

export type InviteCheck = { ok: true; value: string } | { ok: false; reason: string };

export function checkInviteUrl(input: string): InviteCheck {
  const value = input.trim();
  if (!value) return { ok: false, reason: 'Paste the invite link from your Convos conversation.' };
  if (value.length > JOIN_URL_MAX) return { ok: false, reason: 'That invite link is too long.' };
  if (value.startsWith('convos://')) {
    const m = /^convos:\/\/join\/([^/?#]+)$/.exec(value);
    return m?.[1] && SLUG_RE.test(m[1])
      ? { ok: true, value }
      : { ok: false, reason: 'A convos:// link should look like convos://join/<code>.' };
  }
  if (/^https?:\/\//i.test(value)) {
    // Spaces, line breaks, control characters, non-ASCII: `new URL` would quietly drop or encode some of them,
    // and the link would reach the API in a form no Convos app makes.
    if (joinUrlProblem(value)) {
      return {
        ok: false,
        reason: 'An invite link has no spaces or special characters in it. Copy it again from Convos.',
      };
    }
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return { ok: false, reason: 'That is not a valid link.' };
    }
    if (url.protocol !== 'https:' || !INVITE_HOSTS.has(url.hostname)) {
      return {
        ok: false,
        reason: 'Invite links start with https://popup.convos.org/ or https://dev.convos.org/.',
      };
    }
    const slug = url.searchParams.get('i') ?? url.searchParams.get('code');
    if (!slug || !SLUG_RE.test(slug)) {
      return {
        ok: false,
        reason: 'This link has no invite code in it. Copy the full invite link from Convos.',
      };
    }
    return { ok: true, value };
  }
  // Bare invite code (what "copy code" gives you).
  return SLUG_RE.test(value)
    ? { ok: true, value }
    : { ok: false, reason: 'That does not look like a Convos invite link.' };
}
