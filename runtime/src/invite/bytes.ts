import { InviteError } from './errors.js';

/** Small byte helpers shared by the invite files (no Buffer: the module must also run outside Node). */

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

export function hexToBytes(hex: string, what = 'hex value'): Uint8Array {
  const clean = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
  if (!HEX_RE.test(clean)) throw new InviteError('bad_argument', `${what} is not valid hex`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export const utf8 = {
  encode: (s: string): Uint8Array => new TextEncoder().encode(s),
  // fatal: a payload with invalid UTF-8 in a string field is malformed, not something to paper over.
  decode: (b: Uint8Array): string => new TextDecoder('utf-8', { fatal: true }).decode(b),
};

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

export function base64urlEncode(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Strict base64url decoding. Standard base64 (`+`, `/`, `=` padding) is accepted too because
 * slugs get re-encoded by chat apps and URL shorteners; anything else is rejected rather than
 * silently skipped (Buffer.from would drop invalid characters and decode garbage).
 */
export function base64urlDecode(text: string): Uint8Array {
  const s = text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  if (!B64URL_RE.test(s))
    throw new InviteError('bad_encoding', 'invite code contains characters that are not base64url');
  if (s.length % 4 === 1)
    throw new InviteError('bad_encoding', 'invite code has an impossible base64url length');
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
