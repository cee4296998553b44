// Who the visitor is, for rate limits here and at the API: the client address (behind a configured number of
// trusted proxies) and an opaque, salted id of it that the API may use as its rate-limit bucket.
import { createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';

/** Strips a port (`1.2.3.4:5678`, `[::1]:5678`) and brackets; null when what is left is not an IP address. */
function parseAddress(raw: string): string | null {
  let s = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(s);
  if (bracketed?.[1]) s = bracketed[1];
  else if (/^[\d.]+:\d{1,5}$/.test(s)) s = s.slice(0, s.lastIndexOf(':'));
  return isIP(s) ? s : null;
}

/**
 * The visitor's address. `X-Forwarded-For` is a list that every proxy on the way appends its peer to, so only
 * its right end was written by proxies we run: with `hops` trusted proxies in front of the site, the client is
 * the entry `hops` places from the right (1 = the last entry). Everything to the left of it is whatever the
 * client sent, and is never used. With 0 hops, or a header that is missing or not an address where the
 * trusted proxy should have written one, the socket's peer address counts.
 */
export function clientAddress(request: Request, socketAddress: string, hops: number): string {
  if (hops <= 0) return socketAddress;
  const header = request.headers.get('x-forwarded-for');
  if (!header) return socketAddress;
  const entries = header.split(',').map((e) => e.trim());
  // Fewer entries than hops: every one of them was written by a trusted proxy; the leftmost is the farthest.
  const entry = entries[Math.max(0, entries.length - hops)] ?? '';
  return parseAddress(entry) ?? socketAddress;
}

/**
 * What one visitor is for a rate limit: an IPv4 address (also when IPv4-mapped), or the /64 network of an IPv6
 * address (one subscriber's allocation: a host can pick any address in it).
 */
export function clientKey(address: string): string {
  const ip = parseAddress(address);
  if (!ip) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (isIP(ip) === 4) return ip;
  return `${expandV6(ip).slice(0, 4).join(':')}::/64`;
}

function expandV6(ip: string): string[] {
  const [head = '', tail] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (`::1.2.3.4`) counts as two groups; the /64 prefix never contains it.
  const rightGroups = right.flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const fill =
    tail === undefined ? [] : Array<string>(Math.max(0, 8 - left.length - rightGroups.length)).fill('0');
  return [...left, ...fill, ...rightGroups].map((g) => g.replace(/^0+(?=.)/, ''));
}

const processSalt = randomBytes(32).toString('hex');

/**
 * The id the API sees for a visitor: `site-` + 32 hex characters of an HMAC of the visitor's key. Never the
 * address itself; stable for a visitor as long as the salt is (a configured salt: across restarts and site
 * replicas; else per process).
 */
export function clientId(key: string, salt: string | undefined): string {
  return `site-${createHmac('sha256', salt || processSalt)
    .update(key)
    .digest('hex')
    .slice(0, 32)}`;
}

/** Headers that tell the API which anonymous visitor a forwarded claim is for (never sent for operators). */
export function visitorHeaders(id: string): Record<string, string> {
  return { 'x-client-id': id, 'x-client-anonymous': 'true' };
}

/**
 * The rate-limit key of the visitor of an Astro request. Astro's `clientAddress` is the socket's peer address
 * as long as `security.allowedDomains` is not configured (with it, Astro would take the client-controlled
 * left end of X-Forwarded-For: keep it unset). It can throw when the socket is already gone.
 */
export function visitorKey(ctx: { request: Request; clientAddress: string }, hops: number): string {
  let socket = 'unknown';
  try {
    socket = ctx.clientAddress;
  } catch {}
  return clientKey(clientAddress(ctx.request, socket, hops));
}
