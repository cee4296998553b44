/**
 * Per-instance secrets (instance token, chat link, provider keys), encrypted at rest with AES-256-GCM.
 * Workflows only ever see the instance id; activities and the API resolve secrets here.
 *
 * Ciphertext format: `v2.<keyId>.<iv>.<tag>.<data>` (base64url parts). The key id names the key that
 * wrote it (rotation: SECRETS_KEY writes, SECRETS_KEY_OLD keys still read). The GCM associated data is
 * `<instanceId>\0<name>`, so a ciphertext copied to another instance or another name does not decrypt.
 * `v1.…` rows (written before the binding, no associated data) still decrypt; reading one, or a row
 * written with an old key, rewrites it as `v2` under the current key (lazy migration);
 * `SecretStore.reencryptAll()` (`npm run secrets:rotate`) migrates every row at once.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { and, eq, inArray, type SQL, sql } from 'drizzle-orm';
import type { InstanceSecrets, StoredSecretRow } from '../contracts/secrets';
import type { Db } from '../drizzle/client';
import { instanceSecrets } from '../drizzle/schema';
import { queryRows } from '../drizzle/statements';

export interface SecretKey {
  id: string;
  key: Buffer;
}

/** The key that writes, and the ones that may still read (rotation). */
export interface SecretKeys {
  current: SecretKey;
  old: SecretKey[];
}

/** Where a secret belongs: bound into its ciphertext as associated data. */
export interface SecretContext {
  instanceId: string;
  name: string;
}

/** How to make a key, for the error messages. */
export const MAKE_SECRETS_KEY = `node -e "console.log(require('crypto').randomBytes(32).toString('base64'))"`;

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** A base64 (or base64url) 32-byte key. `variable` names it in errors; the key itself is never echoed. */
export function secretKeyFromBase64(encoded: string, variable = 'SECRETS_KEY'): SecretKey {
  const text = encoded.trim();
  // Node's base64 decoder reads both alphabets (+/ and -_); anything else is refused, not skipped.
  const key = BASE64.test(text) ? Buffer.from(text, 'base64') : null;
  if (key?.length !== 32) {
    throw new Error(
      `${variable} must be 32 random bytes, base64-encoded (make one with: ${MAKE_SECRETS_KEY})`,
    );
  }
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
}

/** Local development: POOL_ENVIRONMENT unset or `local` (config/env.ts defaults it to `local`). */
export function isLocalEnvironment(env: Record<string, string | undefined>): boolean {
  return !env.POOL_ENVIRONMENT || env.POOL_ENVIRONMENT === 'local';
}

/**
 * SECRETS_KEY (required outside local development) and SECRETS_KEY_OLD (comma-separated, optional).
 * Local development without SECRETS_KEY uses a key generated once into `<dataDir>/secrets.key`.
 * Throws, with how to make a key, when a required key is missing or a key is malformed.
 */
export function loadSecretKeys(env: Record<string, string | undefined>, dataDir: string): SecretKeys {
  const file = path.resolve(dataDir, 'secrets.key');
  let current: SecretKey;
  if (env.SECRETS_KEY?.trim()) {
    current = secretKeyFromBase64(env.SECRETS_KEY, 'SECRETS_KEY');
  } else if (isLocalEnvironment(env)) {
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      try {
        fs.writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
      } catch (err) {
        // Worker and API starting together: the other one wrote it first.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    current = secretKeyFromBase64(fs.readFileSync(file, 'utf8'), `the generated key in ${file}`);
  } else {
    const existing = fs.existsSync(file)
      ? ` This machine has a generated key in ${file}: if this deployment's secrets were written with it, set SECRETS_KEY to its contents.`
      : '';
    throw new Error(
      `SECRETS_KEY is required when POOL_ENVIRONMENT=${env.POOL_ENVIRONMENT} (only local development generates a key). ` +
        `Make one with: ${MAKE_SECRETS_KEY} — and give the same key to the worker and the API.${existing}`,
    );
  }
  const old: SecretKey[] = [];
  const entries = (env.SECRETS_KEY_OLD ?? '').split(',').map((part) => part.trim());
  for (const [i, encoded] of entries.entries()) {
    if (!encoded) continue;
    const key = secretKeyFromBase64(encoded, `SECRETS_KEY_OLD (entry ${i + 1})`);
    if (!key.key.equals(current.key) && !old.some((k) => k.key.equals(key.key))) old.push(key);
  }
  return { current, old };
}

/** Each key as a KeyObject, made once: a raw key makes a new one inside every cipher (a claim uses four). */
const keyObjects = new WeakMap<SecretKey, KeyObject>();
function keyObjectOf(key: SecretKey): KeyObject {
  let object = keyObjects.get(key);
  if (!object) {
    object = createSecretKey(key.key);
    keyObjects.set(key, object);
  }
  return object;
}

function associatedData({ instanceId, name }: SecretContext): Buffer {
  if (instanceId.includes('\0') || name.includes('\0'))
    throw new Error('secret instance id and name cannot contain NUL');
  return Buffer.from(`${instanceId}\0${name}`, 'utf8');
}

/** Encrypts `plaintext` under `key`, bound to its instance and name (format v2). */
export function encryptSecret(key: SecretKey, plaintext: string, context: SecretContext): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyObjectOf(key), iv);
  cipher.setAAD(associatedData(context));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const parts = [iv, cipher.getAuthTag(), data].map((b) => b.toString('base64url'));
  return ['v2', key.id, ...parts].join('.');
}

interface Opened {
  plaintext: string;
  /** The key that decrypted it. */
  key: SecretKey;
  version: 'v1' | 'v2';
}

function openSecret(keys: SecretKey[], ciphertext: string, context: SecretContext): Opened {
  const [version, keyId, iv, tag, data, ...rest] = ciphertext.split('.');
  const candidates = keys.filter((k) => k.id === keyId);
  if ((version !== 'v1' && version !== 'v2') || !iv || !tag || data === undefined || rest.length > 0) {
    throw new Error(
      `cannot decrypt secret ${context.name} of ${context.instanceId}: unknown format ${version}`,
    );
  }
  if (candidates.length === 0) {
    throw new Error(
      `cannot decrypt secret ${context.name} of ${context.instanceId}: written with key ${keyId}, which is neither SECRETS_KEY nor in SECRETS_KEY_OLD`,
    );
  }
  for (const key of candidates) {
    try {
      const decipher = createDecipheriv('aes-256-gcm', keyObjectOf(key), Buffer.from(iv, 'base64url'));
      if (version === 'v2') decipher.setAAD(associatedData(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      const plaintext = Buffer.concat([
        decipher.update(Buffer.from(data, 'base64url')),
        decipher.final(),
      ]).toString('utf8');
      return { plaintext, key, version };
    } catch {
      // Another key with the same id (a 32-bit id collision), or a tampered / misplaced ciphertext.
    }
  }
  throw new Error(
    `cannot decrypt secret ${context.name} of ${context.instanceId}: authentication failed (tampered, or copied from another instance or name)`,
  );
}

/** Decrypts with whichever of `keys` wrote it; a v2 ciphertext only for the instance and name it was written for. */
export function decryptSecret(keys: SecretKey[], ciphertext: string, context: SecretContext): string {
  return openSecret(keys, ciphertext, context).plaintext;
}

export interface ReencryptReport {
  /** Rows already v2 under the current key. */
  current: number;
  /** Rows rewritten as v2 under the current key. */
  reencrypted: number;
  /** Rows no configured key decrypts (left as they are): instance id and name only. */
  failed: Array<{ instanceId: string; name: string; error: string }>;
}

export class SecretStore implements InstanceSecrets {
  private readonly keys: SecretKey[];

  constructor(
    private readonly db: Db,
    private readonly key: SecretKey,
    oldKeys: SecretKey[] = [],
  ) {
    this.keys = [key, ...oldKeys.filter((k) => !k.key.equals(key.key))];
  }

  private isCurrent(ciphertext: string): boolean {
    return ciphertext.startsWith(`v2.${this.key.id}.`);
  }

  async get(instanceId: string, name: string): Promise<string | null> {
    return (await this.getMany(instanceId, [name]))[name] ?? null;
  }

  /** Several secrets of one instance in one round trip: name → value, absent names left out. */
  async getMany(instanceId: string, names: string[]): Promise<Record<string, string>> {
    if (names.length === 0) return {};
    const rows = await this.db
      .select({ name: instanceSecrets.name, ciphertext: instanceSecrets.ciphertext })
      .from(instanceSecrets)
      .where(and(eq(instanceSecrets.instanceId, instanceId), inArray(instanceSecrets.name, names)));
    return this.openRows(instanceId, rows);
  }

  /** Decrypts rows read from `instance_secrets` (by `getMany` or a caller's own statement). */
  async openRows(instanceId: string, rows: StoredSecretRow[]): Promise<Record<string, string>> {
    const values: Record<string, string> = {};
    for (const row of rows) {
      const opened = openSecret(this.keys, row.ciphertext, { instanceId, name: row.name });
      if (opened.version !== 'v2' || opened.key !== this.key) {
        // Lazy migration. Compare-and-set: a concurrent put wins. A failed rewrite is retried on the next read.
        await this.rewrite(instanceId, row.name, row.ciphertext, opened.plaintext).catch(() => {});
      }
      values[row.name] = opened.plaintext;
    }
    return values;
  }

  private async rewrite(
    instanceId: string,
    name: string,
    previous: string,
    plaintext: string,
  ): Promise<void> {
    await this.db
      .update(instanceSecrets)
      .set({ ciphertext: encryptSecret(this.key, plaintext, { instanceId, name }) })
      .where(
        and(
          eq(instanceSecrets.instanceId, instanceId),
          eq(instanceSecrets.name, name),
          eq(instanceSecrets.ciphertext, previous),
        ),
      );
  }

  async put(instanceId: string, name: string, value: string): Promise<void> {
    await this.putMany(instanceId, { [name]: value });
  }

  /** Stores several secrets of one instance in one statement (a claim's chat and invite links). */
  async putMany(instanceId: string, entries: Record<string, string>): Promise<void> {
    const statement = this.putManyStatement(instanceId, entries);
    if (statement) await queryRows(this.db, statement);
  }

  /** `putMany` as a statement to run with others (null: nothing to store). */
  putManyStatement(instanceId: string, entries: Record<string, string>): SQL | null {
    const rows = Object.entries(entries).map(([name, value]) => ({
      instanceId,
      name,
      ciphertext: encryptSecret(this.key, value, { instanceId, name }),
    }));
    if (rows.length === 0) return null;
    // A plain statement, not drizzle's builder: it is part of every claim (≈ 0.2 ms of CPU less).
    const values = rows.map((r) => sql`(${r.instanceId}, ${r.name}, ${r.ciphertext})`);
    return sql`insert into instance_secrets (instance_id, name, ciphertext) values ${sql.join(values, sql`, `)}
      on conflict (instance_id, name) do update set ciphertext = excluded.ciphertext`;
  }

  /** Returns the stored value, or stores and returns `create()` — idempotent across activity retries. */
  async getOrCreate(instanceId: string, name: string, create: () => string): Promise<string> {
    const existing = await this.get(instanceId, name);
    if (existing !== null) return existing;
    await this.db
      .insert(instanceSecrets)
      .values({ instanceId, name, ciphertext: encryptSecret(this.key, create(), { instanceId, name }) })
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

  /**
   * Rewrites every row that is not yet v2 under the current key (the end of a key rotation: afterwards no
   * row needs SECRETS_KEY_OLD). Rows no key decrypts are reported, not touched. Safe to run while the pool runs.
   */
  async reencryptAll(): Promise<ReencryptReport> {
    const rows = await this.db
      .select({
        instanceId: instanceSecrets.instanceId,
        name: instanceSecrets.name,
        ciphertext: instanceSecrets.ciphertext,
      })
      .from(instanceSecrets);
    const report: ReencryptReport = { current: 0, reencrypted: 0, failed: [] };
    for (const { instanceId, name, ciphertext } of rows) {
      if (this.isCurrent(ciphertext)) {
        report.current++;
        continue;
      }
      let plaintext: string;
      try {
        plaintext = openSecret(this.keys, ciphertext, { instanceId, name }).plaintext;
      } catch (err) {
        report.failed.push({ instanceId, name, error: (err as Error).message });
        continue;
      }
      await this.rewrite(instanceId, name, ciphertext, plaintext);
      report.reencrypted++;
    }
    return report;
  }
}
