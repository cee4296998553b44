/**
 * Verifying the providers' webhook signatures over the raw body (never re-serialized JSON):
 *
 * - AgentMail signs with Svix (https://docs.agentmail.to/webhooks-overview, https://docs.svix.com/receiving/verifying-payloads/how-manual):
 *   headers `svix-id`, `svix-timestamp` (Unix seconds), `svix-signature` (`v1,<base64>`, several separated by
 *   spaces during a secret rotation); the signature is HMAC-SHA256 over `${id}.${timestamp}.${body}` with the
 *   base64 key after the endpoint secret's `whsec_` prefix; 5 minutes of tolerance either way. The same
 *   check as the `svix` package's `Webhook.verify` (standardwebhooks), with node:crypto; the unit tests
 *   include Svix's published test vector.
 * - Telnyx signs with Ed25519 (https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks):
 *   headers `telnyx-signature-ed25519` (base64, 64 bytes) and `telnyx-timestamp` (Unix seconds); the signed
 *   message is `${timestamp}|${body}`; the key is the account's public key (base64, 32 bytes, from the
 *   portal). We apply the same 5-minute tolerance.
 *
 * Each answers the signed timestamp (what tells a provider's retry, re-signed later, from a replay of a
 * captured delivery) or why it refused: `missing` (400), `bad-signature` and `stale` (401).
 */
import { createHmac, createPublicKey, type KeyObject, timingSafeEqual, verify } from 'node:crypto';

export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;

export type Verified = { ok: true; timestamp: number; deliveryId: string | null };
export type Refused = { ok: false; reason: 'missing' | 'bad-signature' | 'stale'; message: string };

type Headers = Record<string, string | string[] | undefined>;

const header = (headers: Headers, name: string): string | null => {
  const v = headers[name];
  return typeof v === 'string' && v.length > 0 ? v : null;
};

const refuse = (reason: Refused['reason'], message: string): Refused => ({ ok: false, reason, message });

/**
 * A verified signature whose timestamp is within the tolerance (checked after the signature: the timestamp is
 * only worth reading once it is signed).
 */
function fresh(timestamp: string, nowMs: number, deliveryId: string | null): Verified | Refused {
  const seconds = Number(timestamp);
  if (Math.abs(nowMs / 1000 - seconds) > SIGNATURE_TOLERANCE_SECONDS)
    return refuse('stale', 'the signature timestamp is outside the 5-minute tolerance');
  return { ok: true, timestamp: seconds, deliveryId };
}

/** The endpoint secret's key: the base64 after `whsec_`. */
function svixKey(secret: string): Buffer {
  const key = Buffer.from(secret.trim().replace(/^whsec_/, ''), 'base64');
  if (key.length === 0) throw new Error('the AgentMail webhook secret is empty');
  return key;
}

/** Svix (AgentMail). `secret` is the endpoint's `whsec_…` secret. */
export function verifySvix(
  secret: string,
  headers: Headers,
  body: Buffer,
  nowMs = Date.now(),
): Verified | Refused {
  const id = header(headers, 'svix-id');
  const timestamp = header(headers, 'svix-timestamp');
  const signatures = header(headers, 'svix-signature');
  if (!id || !timestamp || !signatures)
    return refuse('missing', 'svix-id, svix-timestamp and svix-signature are required');
  if (!/^\d{1,12}$/.test(timestamp)) return refuse('bad-signature', 'svix-timestamp is not a Unix time');
  const expected = createHmac('sha256', svixKey(secret))
    .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`, 'utf8'), body]))
    .digest();
  // Every `v1,<base64>` offered (a rotation sends the old and the new secret's); other versions are skipped.
  const valid = signatures.split(' ').some((entry) => {
    const [version, sig] = entry.split(',');
    if (version !== 'v1' || !sig) return false;
    const given = Buffer.from(sig, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!valid) return refuse('bad-signature', 'no valid signature for this body');
  return fresh(timestamp, nowMs, id);
}

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The account's public key (base64 of the raw 32 bytes, as the Telnyx portal shows it). */
export function telnyxPublicKey(base64: string): KeyObject {
  const raw = Buffer.from(base64.trim(), 'base64');
  if (raw.length !== 32) throw new Error('TELNYX_PUBLIC_KEY must be the base64 of a 32-byte Ed25519 key');
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Telnyx: Ed25519 over `${timestamp}|${body}`. */
export function verifyTelnyx(
  publicKey: KeyObject,
  headers: Headers,
  body: Buffer,
  nowMs = Date.now(),
): Verified | Refused {
  const signature = header(headers, 'telnyx-signature-ed25519');
  const timestamp = header(headers, 'telnyx-timestamp');
  if (!signature || !timestamp)
    return refuse('missing', 'telnyx-signature-ed25519 and telnyx-timestamp are required');
  if (!/^\d{1,12}$/.test(timestamp)) return refuse('bad-signature', 'telnyx-timestamp is not a Unix time');
  const sig = Buffer.from(signature, 'base64');
  const signed = Buffer.concat([Buffer.from(`${timestamp}|`, 'utf8'), body]);
  let valid = false;
  try {
    valid = sig.length === 64 && verify(null, signed, publicKey, sig);
  } catch {
    valid = false;
  }
  if (!valid) return refuse('bad-signature', 'no valid signature for this body');
  return fresh(timestamp, nowMs, null);
}
