/** The payload codec: round trip, key id, rotation, unknown keys, plaintext passthrough, tampering. */
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/env';
import {
  dataConverterOf,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  loadPayloadKeys,
  PayloadEncryptionCodec,
  payloadKeyFromBase64,
} from './payload-codec';

const newKey = () => randomBytes(32).toString('base64');
const codecOf = (key: string, oldKeys: string[] = []) =>
  new PayloadEncryptionCodec(loadPayloadKeys({ key, oldKeys }));
const payload = (value: unknown) => defaultPayloadConverter.toPayload(value);
const str = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');

describe('payload codec', () => {
  it('round-trips payloads, hiding their data and their metadata', async () => {
    const codec = codecOf(newKey());
    const originals = [
      payload({ agentName: 'Ada Lovelace', n: 1 }),
      payload(null),
      payload('x'.repeat(10_000)),
    ];
    const encoded = await codec.encode(originals);
    for (const [i, e] of encoded.entries()) {
      expect(str(e.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
      expect(Object.keys(e.metadata ?? {}).sort()).toEqual(['encoding', KEY_ID_METADATA]);
      expect(Buffer.from(e.data!).includes('Ada Lovelace')).toBe(false);
      expect(Buffer.from(e.data!).includes('json/plain')).toBe(false);
      expect(e.data!.length).toBeGreaterThan(originals[i]!.data!.length);
    }
    const decoded = await codec.decode(encoded);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
      { agentName: 'Ada Lovelace', n: 1 },
      null,
      'x'.repeat(10_000),
    ]);
    expect(str(decoded[0]!.metadata?.encoding)).toBe('json/plain');
  });

  it('round-trips payloads without data or metadata (protobuf leaves them empty)', async () => {
    const codec = codecOf(newKey());
    const empty = [{ metadata: { encoding: Buffer.from('binary/null') } }, {}] as Payload[];
    const decoded = await codec.decode(await codec.encode(empty));
    expect(decoded.map((p) => str(p.metadata?.encoding))).toEqual(['binary/null', '']);
    expect(decoded.map((p) => Buffer.from(p.data ?? []).length)).toEqual([0, 0]);
    // and decoding them again (the codec endpoint re-serialises what it decoded) is harmless
    expect((await codec.decode(decoded)).length).toBe(2);
  });

  it('encrypts the same payload differently every time (a fresh IV)', async () => {
    const codec = codecOf(newKey());
    const [a, b] = await codec.encode([payload('same'), payload('same')]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  it('names the key in the metadata by a short hash of it, never the key', async () => {
    const key = newKey();
    const [e] = await codecOf(key).encode([payload(1)]);
    const id = str(e!.metadata?.[KEY_ID_METADATA]);
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(id).toBe(payloadKeyFromBase64(key, 'K').id);
    const everything = Buffer.concat([
      Buffer.from(e!.data!),
      ...Object.values(e!.metadata!).map((v) => Buffer.from(v)),
    ]);
    expect(everything.includes(key)).toBe(false);
    expect(everything.includes(Buffer.from(key, 'base64'))).toBe(false);
  });

  it('rotation: the new key encrypts, old keys still decrypt', async () => {
    const oldKey = newKey();
    const newer = newKey();
    const [before] = await codecOf(oldKey).encode([payload('written with the old key')]);
    const rotated = codecOf(newer, [oldKey]);
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([before!]))[0]!)).toBe(
      'written with the old key',
    );
    const [after] = await rotated.encode([payload('new')]);
    expect(str(after!.metadata?.[KEY_ID_METADATA])).toBe(payloadKeyFromBase64(newer, 'K').id);
    // Without the old key, the old payload is refused, naming its key id.
    await expect(codecOf(newer).decode([before!])).rejects.toThrow(
      `key id "${payloadKeyFromBase64(oldKey, 'K').id}"`,
    );
  });

  it('refuses a payload with an unknown key id, saying which key id', async () => {
    const [e] = await codecOf(newKey()).encode([payload('secret')]);
    const other = codecOf(newKey());
    const id = str(e!.metadata?.[KEY_ID_METADATA]);
    await expect(other.decode([e!])).rejects.toThrow(new RegExp(`key id "${id}".*PAYLOAD_ENCRYPTION_KEY`));
  });

  it('passes payloads without the encrypted encoding through (histories from before the key)', async () => {
    const codec = codecOf(newKey());
    const plain = [payload({ a: 1 }), payload(undefined), { metadata: {}, data: new Uint8Array([1, 2]) }];
    expect(await codec.decode(plain as Payload[])).toEqual(plain);
  });

  it('refuses tampered, truncated or relabelled ciphertext', async () => {
    const codec = codecOf(newKey());
    const [e] = await codec.encode([payload('do not touch')]);
    const data = Buffer.from(e!.data!);
    for (const i of [0, 12, 20, data.length - 1]) {
      const flipped = Buffer.from(data);
      flipped[i] = flipped[i]! ^ 1;
      await expect(codec.decode([{ ...e!, data: flipped }])).rejects.toThrow(/does not decrypt/);
    }
    await expect(codec.decode([{ ...e!, data: data.subarray(0, 20) }])).rejects.toThrow(/too short/);
    await expect(codec.decode([{ metadata: { encoding: e!.metadata!.encoding! }, data }])).rejects.toThrow(
      /without an encryption-key-id/,
    );
  });
});

describe('payload keys from configuration', () => {
  it('refuses a malformed key at startup, naming the variable and never the value', () => {
    for (const bad of ['not base64!', Buffer.alloc(16).toString('base64'), 'c2hvcnQ=']) {
      expect(() => loadConfig({ PAYLOAD_ENCRYPTION_KEY: bad })).toThrow(/PAYLOAD_ENCRYPTION_KEY must be 32/);
      try {
        loadConfig({ PAYLOAD_ENCRYPTION_KEY: bad });
      } catch (err) {
        expect((err as Error).message).not.toContain(bad);
      }
    }
    expect(() =>
      loadConfig({ PAYLOAD_ENCRYPTION_KEY: newKey(), PAYLOAD_ENCRYPTION_OLD_KEYS: `${newKey()},nope` }),
    ).toThrow(/PAYLOAD_ENCRYPTION_OLD_KEYS \(entry 2\) must be 32/);
    expect(() => loadConfig({ PAYLOAD_ENCRYPTION_OLD_KEYS: newKey() })).toThrow(
      /PAYLOAD_ENCRYPTION_OLD_KEYS needs PAYLOAD_ENCRYPTION_KEY/,
    );
  });

  it('gives a data converter with the codec when the key is set, and none otherwise', () => {
    expect(dataConverterOf(loadConfig({}))).toBeUndefined();
    const converter = dataConverterOf(loadConfig({ PAYLOAD_ENCRYPTION_KEY: newKey() }));
    expect(converter?.payloadCodecs).toHaveLength(1);
    expect(converter?.payloadCodecs?.[0]).toBeInstanceOf(PayloadEncryptionCodec);
  });
});
