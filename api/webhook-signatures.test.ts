/**
 * The webhook signature checks against the providers' schemes: Svix's published test vector, the stand-ins'
 * independent signers (test/standins/), and every way a delivery can be wrong.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { svixSignature } from '../test/standins/agentmail-standin';
import { telnyxSignature } from '../test/standins/telnyx-standin';
import { telnyxPublicKey, verifySvix, verifyTelnyx } from './webhook-signatures';

describe('Svix (AgentMail)', () => {
  // Svix's documented example (docs.svix.com, "Verifying payloads manually"; the libraries' test vector).
  const vector = {
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    timestamp: 1614265330,
    body: '{"test": 2432232314}',
    signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  };
  const headersOf = (id: string, ts: number, sig: string) => ({
    'svix-id': id,
    'svix-timestamp': String(ts),
    'svix-signature': sig,
  });
  const at = vector.timestamp * 1000;

  it("accepts Svix's test vector at its time", () => {
    const res = verifySvix(
      vector.secret,
      headersOf(vector.id, vector.timestamp, vector.signature),
      Buffer.from(vector.body),
      at,
    );
    expect(res).toEqual({ ok: true, timestamp: vector.timestamp, deliveryId: vector.id });
  });

  it('the stand-in signs as Svix does', () => {
    expect(svixSignature(vector.secret, vector.id, vector.timestamp, vector.body)).toBe(vector.signature);
  });

  it('refuses a tampered body, a wrong secret, another id and a changed timestamp', () => {
    const h = headersOf(vector.id, vector.timestamp, vector.signature);
    expect(verifySvix(vector.secret, h, Buffer.from('{"test": 2432232315}'), at)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
    const other = `whsec_${randomBytes(24).toString('base64')}`;
    expect(verifySvix(other, h, Buffer.from(vector.body), at)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
    expect(
      verifySvix(vector.secret, { ...h, 'svix-id': 'msg_other' }, Buffer.from(vector.body), at),
    ).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(
      verifySvix(
        vector.secret,
        { ...h, 'svix-timestamp': String(vector.timestamp + 1) },
        Buffer.from(vector.body),
        at,
      ),
    ).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a valid signature outside the 5-minute tolerance, either way', () => {
    const h = headersOf(vector.id, vector.timestamp, vector.signature);
    const body = Buffer.from(vector.body);
    expect(verifySvix(vector.secret, h, body, at + 299_000).ok).toBe(true);
    expect(verifySvix(vector.secret, h, body, at + 301_000)).toMatchObject({ ok: false, reason: 'stale' });
    expect(verifySvix(vector.secret, h, body, at - 301_000)).toMatchObject({ ok: false, reason: 'stale' });
  });

  it('refuses missing headers', () => {
    const h = headersOf(vector.id, vector.timestamp, vector.signature);
    for (const name of ['svix-id', 'svix-timestamp', 'svix-signature'] as const) {
      const { [name]: _gone, ...rest } = h;
      expect(verifySvix(vector.secret, rest, Buffer.from(vector.body), at)).toMatchObject({
        ok: false,
        reason: 'missing',
      });
    }
    expect(
      verifySvix(vector.secret, { ...h, 'svix-timestamp': 'yesterday' }, Buffer.from(vector.body), at).ok,
    ).toBe(false);
  });

  it('accepts when one of several space-separated signatures is valid (secret rotation), and only then', () => {
    const body = Buffer.from(vector.body);
    const wrong = svixSignature(
      `whsec_${randomBytes(24).toString('base64')}`,
      vector.id,
      vector.timestamp,
      vector.body,
    );
    const both = `${wrong} v2,abcd ${vector.signature}`;
    expect(verifySvix(vector.secret, headersOf(vector.id, vector.timestamp, both), body, at).ok).toBe(true);
    expect(
      verifySvix(vector.secret, headersOf(vector.id, vector.timestamp, `${wrong} v1,`), body, at).ok,
    ).toBe(false);
    // A valid signature under another version tag does not count.
    const v2 = vector.signature.replace('v1,', 'v2,');
    expect(verifySvix(vector.secret, headersOf(vector.id, vector.timestamp, v2), body, at).ok).toBe(false);
  });
});

describe('Ed25519 (Telnyx)', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
  const key = telnyxPublicKey(raw);
  const body = '{"data":{"event_type":"message.received","id":"e1"}}';
  const now = 1_800_000_000;
  const headersOf = (ts: number, sig: string) => ({
    'telnyx-timestamp': String(ts),
    'telnyx-signature-ed25519': sig,
  });

  it('accepts a signature over timestamp|body with the account key', () => {
    const res = verifyTelnyx(
      key,
      headersOf(now, telnyxSignature(privateKey, now, body)),
      Buffer.from(body),
      now * 1000,
    );
    expect(res).toEqual({ ok: true, timestamp: now, deliveryId: null });
  });

  it('refuses a tampered body, another key, a changed timestamp and garbage', () => {
    const sig = telnyxSignature(privateKey, now, body);
    expect(verifyTelnyx(key, headersOf(now, sig), Buffer.from(`${body} `), now * 1000)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(
      verifyTelnyx(key, headersOf(now, telnyxSignature(other, now, body)), Buffer.from(body), now * 1000),
    ).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(verifyTelnyx(key, headersOf(now + 1, sig), Buffer.from(body), now * 1000)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verifyTelnyx(key, headersOf(now, 'AAAA'), Buffer.from(body), now * 1000)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('refuses a valid signature outside the 5-minute tolerance', () => {
    const old = now - 301;
    const sig = telnyxSignature(privateKey, old, body);
    expect(verifyTelnyx(key, headersOf(old, sig), Buffer.from(body), now * 1000)).toMatchObject({
      ok: false,
      reason: 'stale',
    });
    expect(verifyTelnyx(key, headersOf(old, sig), Buffer.from(body), (now - 2) * 1000).ok).toBe(true);
  });

  it('refuses missing headers, and a public key of the wrong size', () => {
    expect(
      verifyTelnyx(key, { 'telnyx-timestamp': String(now) }, Buffer.from(body), now * 1000),
    ).toMatchObject({ ok: false, reason: 'missing' });
    expect(
      verifyTelnyx(key, { 'telnyx-signature-ed25519': 'x' }, Buffer.from(body), now * 1000),
    ).toMatchObject({ ok: false, reason: 'missing' });
    expect(() => telnyxPublicKey(Buffer.alloc(31).toString('base64'))).toThrow(/32-byte/);
  });
});
