/**
 * Payload encryption: with PAYLOAD_ENCRYPTION_KEY set, every payload the pool's processes hand to Temporal
 * (workflow and activity inputs and results, signal, query and Update arguments, memos, failure details) is
 * encrypted with AES-256-GCM before it leaves the process, so a Temporal service run by someone else only ever
 * holds ciphertext. Search attributes, workflow ids, Update ids and failure messages are not payloads: they
 * stay plaintext and never carry user data (docs/operators.md#payload-encryption).
 *
 * An encrypted payload: metadata `encoding: binary/encrypted` and `encryption-key-id: <key id>` (a short hash
 * of the key, never the key), data `<iv 12 bytes><ciphertext><GCM tag 16 bytes>` of the whole original
 * payload (its metadata too) as protobuf. Rotation: PAYLOAD_ENCRYPTION_KEY encrypts, the keys of
 * PAYLOAD_ENCRYPTION_OLD_KEYS still decrypt. Decoding passes a payload without the encrypted encoding through
 * unchanged (histories from before the key was set stay readable); one with a key id no configured key has
 * is an error naming that key id.
 *
 * The same codec serves the Temporal client, the worker, the replay script, the test stack and the codec
 * endpoint the Web UI and the CLI decode through (`api/routes/codec.ts`).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

// @temporalio/proto is CommonJS: take the namespace from its default export.
const { temporal } = proto;

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const ENCODING_METADATA = 'encoding';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** How to make a key, for the error messages. */
export const MAKE_PAYLOAD_KEY = `node -e "console.log(require('crypto').randomBytes(32).toString('base64'))"`;

export interface PayloadKey {
  /** A short hash of the key: safe to show, store and log. */
  id: string;
  key: Buffer;
}

export interface PayloadKeys {
  /** Encrypts every new payload. */
  current: PayloadKey;
  /** Still decrypt (a rotation in progress). */
  old: PayloadKey[];
}

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * A base64 (or base64url) 32-byte key. `variable` names it in errors; the key itself is never echoed.
 * The key id is the first 8 hex digits of its SHA-256.
 */
export function payloadKeyFromBase64(encoded: string, variable: string): PayloadKey {
  const text = encoded.trim();
  const key = BASE64.test(text) ? Buffer.from(text, 'base64') : null;
  if (key?.length !== 32) {
    throw new Error(
      `${variable} must be 32 random bytes, base64-encoded (make one with: ${MAKE_PAYLOAD_KEY})`,
    );
  }
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
}

/** The key settings of configuration (`config/env.ts`): the current key and the old ones, as given. */
export interface PayloadEncryptionSettings {
  key: string;
  oldKeys: string[];
}

/**
 * PAYLOAD_ENCRYPTION_KEY and PAYLOAD_ENCRYPTION_OLD_KEYS (comma-separated). Throws, naming the variable (and
 * the entry), on a malformed key. Old keys equal to the current one, or repeated, are dropped.
 */
export function loadPayloadKeys(settings: PayloadEncryptionSettings): PayloadKeys {
  const current = payloadKeyFromBase64(settings.key, 'PAYLOAD_ENCRYPTION_KEY');
  const old: PayloadKey[] = [];
  for (const [i, encoded] of settings.oldKeys.entries()) {
    if (!encoded.trim()) continue;
    const key = payloadKeyFromBase64(encoded, `PAYLOAD_ENCRYPTION_OLD_KEYS (entry ${i + 1})`);
    if (!key.key.equals(current.key) && !old.some((k) => k.key.equals(key.key))) old.push(key);
  }
  return { current, old };
}

/** `PAYLOAD_ENCRYPTION_OLD_KEYS` as a list (empty entries dropped). */
export function splitKeys(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
}

const utf8 = (text: string) => new TextEncoder().encode(text);
// protobufjs leaves an absent bytes field as an empty array, not a Uint8Array: copy whatever it is.
const text = (bytes: Uint8Array | null | undefined) =>
  bytes ? Buffer.from(bytes).toString('utf8') : undefined;

/** A payload the codec refuses to decode: tampered, truncated, or sealed with a key it does not have. */
export class PayloadDecryptionError extends Error {
  override name = 'PayloadDecryptionError';
}

export class PayloadEncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, PayloadKey>;

  constructor(private readonly keys: PayloadKeys) {
    this.byId = new Map([keys.current, ...keys.old].map((k) => [k.id, k]));
  }

  /** The id of the key that encrypts. */
  get keyId(): string {
    return this.keys.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decrypt(payload));
  }

  /** True when `payload` is one this codec's format describes (whatever key sealed it). */
  static isEncrypted(payload: Payload): boolean {
    return text(payload.metadata?.[ENCODING_METADATA]) === ENCRYPTED_ENCODING;
  }

  private encrypt(payload: Payload): Payload {
    const { id, key } = this.keys.current;
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    // The key id is bound as associated data: a payload relabelled with another key id does not decrypt.
    cipher.setAAD(utf8(id));
    const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { [ENCODING_METADATA]: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(id) },
      data: sealed,
    };
  }

  private decrypt(payload: Payload): Payload {
    if (!PayloadEncryptionCodec.isEncrypted(payload)) return payload;
    const keyId = text(payload.metadata?.[KEY_ID_METADATA]);
    if (!keyId) throw new PayloadDecryptionError('encrypted payload without an encryption-key-id');
    const key = this.byId.get(keyId);
    if (!key) {
      // The id is a hash of a key, not the key: safe to name, and it says which key the operator needs.
      throw new PayloadDecryptionError(
        `payload encrypted with key id ${JSON.stringify(keyId.slice(0, 64))}, which is neither PAYLOAD_ENCRYPTION_KEY (${this.keys.current.id}) nor one of PAYLOAD_ENCRYPTION_OLD_KEYS${this.keys.old.length ? ` (${this.keys.old.map((k) => k.id).join(', ')})` : ''}`,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES)
      throw new PayloadDecryptionError(`encrypted payload too short (key id ${keyId})`);
    const bytes = Buffer.from(data);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(utf8(keyId));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return temporal.api.common.v1.Payload.decode(plain);
    } catch {
      throw new PayloadDecryptionError(
        `encrypted payload does not decrypt with key ${keyId} (tampered or truncated)`,
      );
    }
  }
}

/** The codec of configuration; null when payload encryption is off (no PAYLOAD_ENCRYPTION_KEY). */
export function payloadCodecOf(config: {
  payloadEncryption: PayloadEncryptionSettings | null;
}): PayloadEncryptionCodec | null {
  return config.payloadEncryption
    ? new PayloadEncryptionCodec(loadPayloadKeys(config.payloadEncryption))
    : null;
}

/**
 * What the Temporal client, the worker and the replayer take as `dataConverter`: the codec when payload
 * encryption is on, otherwise nothing (Temporal's defaults, exactly as without this module).
 */
export function dataConverterOf(config: {
  payloadEncryption: PayloadEncryptionSettings | null;
}): Pick<DataConverter, 'payloadCodecs'> | undefined {
  const codec = payloadCodecOf(config);
  return codec ? { payloadCodecs: [codec] } : undefined;
}
