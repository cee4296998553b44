/**
 * Encrypted histories in the tests. The run has one payload key (made by test/global-setup.ts, handed to test
 * files as `inject('payloadEncryptionKey')` and left in test-artifacts/ for the post-run checks); a stack runs
 * with payload encryption when a test passes it as PAYLOAD_ENCRYPTION_KEY. Exported histories are what Temporal
 * stores (ciphertext where encryption was on); the post-run checks decode them with the run's key, so replay
 * works and the secret scan reads the plaintext too.
 */
import fs from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { loadPayloadKeys, PayloadEncryptionCodec } from '../../system/payload-codec';

// @temporalio/proto is CommonJS: take the namespace from its default export.
const { temporal } = proto;
type History = proto.temporal.api.history.v1.IHistory;
type Payload = proto.temporal.api.common.v1.IPayload;

const artifacts = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts');
export const RUN_PAYLOAD_KEY_FILE = path.join(artifacts, 'payload-encryption-key');
/** Values that a stack with payload encryption on sent as payloads: they must never appear in plaintext. */
const PLAINTEXTS_DIR = path.join(artifacts, 'encrypted-plaintexts');

/** The codec of the run's payload key (written by test/global-setup.ts). */
export function runCodec(): PayloadEncryptionCodec {
  const key = fs.readFileSync(RUN_PAYLOAD_KEY_FILE, 'utf8').trim();
  return new PayloadEncryptionCodec(loadPayloadKeys({ key, oldKeys: [] }));
}

/** Records values sent through an encrypting stack, for the post-run check that no history holds them. */
export function recordEncryptedPlaintexts(...values: string[]): void {
  fs.mkdirSync(PLAINTEXTS_DIR, { recursive: true });
  fs.writeFileSync(
    path.join(PLAINTEXTS_DIR, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`),
    JSON.stringify(values),
  );
}

export function recordedEncryptedPlaintexts(): string[] {
  if (!fs.existsSync(PLAINTEXTS_DIR)) return [];
  return fs
    .readdirSync(PLAINTEXTS_DIR)
    .flatMap((f) => JSON.parse(fs.readFileSync(path.join(PLAINTEXTS_DIR, f), 'utf8')) as string[]);
}

function isPayload(value: unknown): value is Payload {
  return (
    typeof value === 'object' &&
    value !== null &&
    'metadata' in value &&
    typeof (value as Payload).metadata === 'object' &&
    (value as Payload).metadata !== null &&
    'encoding' in ((value as Payload).metadata ?? {})
  );
}

/** A copy of `history` with every encrypted payload decrypted (anywhere in it: inputs, results, headers, memos, failures). */
export async function decodeHistory(history: History, codec: PayloadEncryptionCodec): Promise<History> {
  const copy = temporal.api.history.v1.History.decode(
    temporal.api.history.v1.History.encode(history).finish(),
  );
  const stack: unknown[] = [copy];
  const found: Array<{ holder: Record<string, unknown> | unknown[]; key: string | number }> = [];
  while (stack.length > 0) {
    const value = stack.pop();
    if (value === null || typeof value !== 'object' || value instanceof Uint8Array) continue;
    const entries: Array<[string | number, unknown]> = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      : Object.entries(value);
    for (const [key, child] of entries) {
      if (isPayload(child) && PayloadEncryptionCodec.isEncrypted(child as never)) {
        found.push({ holder: value as Record<string, unknown>, key });
      } else stack.push(child);
    }
  }
  for (const { holder, key } of found) {
    const [decoded] = await codec.decode([(holder as Record<string | number, unknown>)[key] as never]);
    (holder as Record<string | number, unknown>)[key] = decoded;
  }
  return copy;
}

/** The history as the binary protobuf Temporal stores and the post-run scan reads. */
export function historyBytes(history: History): Buffer {
  return Buffer.from(temporal.api.history.v1.History.encode(history).finish());
}
