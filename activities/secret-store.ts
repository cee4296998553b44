/**
 * Per-instance secrets (instance token, chat link, later provider keys), encrypted at rest with
 * AES-256-GCM. Workflows only ever see the instance id; activities and the API resolve secrets here.
 * Ciphertext format: `v1.<keyId>.<iv>.<tag>.<data>` (base64url) — the key id allows key rotation.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import type { Db } from '../drizzle/client';
import { instanceSecrets } from '../drizzle/schema';

export interface SecretKey {
  id: string;
  key: Buffer;
}

export function secretKeyFromBase64(encoded: string): SecretKey {
  const key = Buffer.from(encoded, 'base64');
  if (key.length !== 32) throw new Error('SECRETS_KEY must be 32 bytes, base64-encoded');
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
}

/** SECRETS_KEY when set; otherwise a key generated once under the data dir (local development). */
export function loadSecretKey(env: Record<string, string | undefined>, dataDir: string): SecretKey {
  if (env.SECRETS_KEY) return secretKeyFromBase64(env.SECRETS_KEY);
  const file = path.resolve(dataDir, 'secrets.key');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
  }
  return secretKeyFromBase64(fs.readFileSync(file, 'utf8').trim());
}

export function encryptSecret(key: SecretKey, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const parts = [iv, cipher.getAuthTag(), data].map((b) => b.toString('base64url'));
  return ['v1', key.id, ...parts].join('.');
}

export function decryptSecret(keys: SecretKey[], ciphertext: string): string {
  const [version, keyId, iv, tag, data] = ciphertext.split('.');
  const key = keys.find((k) => k.id === keyId);
  if (version !== 'v1' || !key || !iv || !tag || data === undefined) {
    throw new Error(`cannot decrypt secret (format ${version}, key ${keyId})`);
  }
  const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
}

export class SecretStore {
  constructor(
    private readonly db: Db,
    private readonly key: SecretKey,
    private readonly oldKeys: SecretKey[] = [],
  ) {}

  async get(instanceId: string, name: string): Promise<string | null> {
    const rows = await this.db
      .select({ ciphertext: instanceSecrets.ciphertext })
      .from(instanceSecrets)
      .where(and(eq(instanceSecrets.instanceId, instanceId), eq(instanceSecrets.name, name)));
    const row = rows[0];
    return row ? decryptSecret([this.key, ...this.oldKeys], row.ciphertext) : null;
  }

  async put(instanceId: string, name: string, value: string): Promise<void> {
    const ciphertext = encryptSecret(this.key, value);
    await this.db
      .insert(instanceSecrets)
      .values({ instanceId, name, ciphertext })
      .onConflictDoUpdate({
        target: [instanceSecrets.instanceId, instanceSecrets.name],
        set: { ciphertext },
      });
  }

  /** Returns the stored value, or stores and returns `create()` — idempotent across activity retries. */
  async getOrCreate(instanceId: string, name: string, create: () => string): Promise<string> {
    const existing = await this.get(instanceId, name);
    if (existing !== null) return existing;
    await this.db
      .insert(instanceSecrets)
      .values({ instanceId, name, ciphertext: encryptSecret(this.key, create()) })
      .onConflictDoNothing();
    return (await this.get(instanceId, name))!;
  }

  async delete(instanceId: string, name: string): Promise<void> {
    await this.db
      .delete(instanceSecrets)
      .where(and(eq(instanceSecrets.instanceId, instanceId), eq(instanceSecrets.name, name)));
  }

  async deleteAll(instanceId: string): Promise<void> {
    await this.db.delete(instanceSecrets).where(eq(instanceSecrets.instanceId, instanceId));
  }
}
