/**
 * The secret store's keys and ciphertexts, without a server: SECRETS_KEY is required outside local
 * development, SECRETS_KEY_OLD keys still read (and rows read with them are rewritten under the current
 * key), and every ciphertext is bound to its instance and name. The store runs on an in-memory PGlite.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../drizzle/client';
import * as schema from '../drizzle/schema';
import {
  decryptSecret,
  encryptSecret,
  loadSecretKeys,
  MAKE_SECRETS_KEY,
  type SecretKey,
  SecretStore,
  secretKeyFromBase64,
} from './secret-store';

const newKey = () => randomBytes(32).toString('base64');
const dataDirs: string[] = [];
const tempDataDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secret-store-'));
  dataDirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** What the previous version wrote: `v1.<keyId>.<iv>.<tag>.<data>`, no associated data. */
function encryptV1(key: SecretKey, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', key.id, ...[iv, cipher.getAuthTag(), data].map((b) => b.toString('base64url'))].join('.');
}

describe('loadSecretKeys', () => {
  it('local development (POOL_ENVIRONMENT unset or local) generates a key once under the data dir', () => {
    const dir = tempDataDir();
    const first = loadSecretKeys({}, dir);
    const file = path.join(dir, 'secrets.key');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(loadSecretKeys({ POOL_ENVIRONMENT: 'local' }, dir).current.key.equals(first.current.key)).toBe(
      true,
    );
    expect(first.old).toEqual([]);
  });

  it('outside local development refuses to start without SECRETS_KEY, saying how to make one', () => {
    const dir = tempDataDir();
    const load = () => loadSecretKeys({ POOL_ENVIRONMENT: 'production' }, dir);
    expect(load).toThrow(/SECRETS_KEY is required when POOL_ENVIRONMENT=production/);
    expect(load).toThrow(MAKE_SECRETS_KEY);
    expect(fs.existsSync(path.join(dir, 'secrets.key'))).toBe(false); // nothing generated
    // A key generated earlier on this machine is not used silently either, only pointed at.
    loadSecretKeys({}, dir);
    expect(load).toThrow(/This machine has a generated key in .*secrets\.key/);
    expect(() => loadSecretKeys({ POOL_ENVIRONMENT: 'staging', SECRETS_KEY: '  ' }, dir)).toThrow(
      /is required/,
    );
  });

  it('outside local development takes SECRETS_KEY and SECRETS_KEY_OLD (comma-separated, deduplicated)', () => {
    const [current, old1, old2] = [newKey(), newKey(), newKey()];
    const keys = loadSecretKeys(
      {
        POOL_ENVIRONMENT: 'production',
        SECRETS_KEY: current,
        SECRETS_KEY_OLD: ` ${old1}, ${old2},,${old1},${current}`,
      },
      tempDataDir(),
    );
    expect(keys.current.key.equals(Buffer.from(current, 'base64'))).toBe(true);
    expect(keys.old.map((k) => k.key.toString('base64'))).toEqual([old1, old2]);
    expect(keys.current.id).toMatch(/^[0-9a-f]{8}$/);
  });

  it('refuses malformed keys by variable name without echoing them', () => {
    const short = randomBytes(16).toString('base64');
    const garbage = `${newKey().slice(0, 40)}!!!!`;
    for (const [env, name] of [
      [{ SECRETS_KEY: short }, 'SECRETS_KEY'],
      [{ SECRETS_KEY: garbage }, 'SECRETS_KEY'],
      [{ SECRETS_KEY: newKey(), SECRETS_KEY_OLD: `${newKey()},${short}` }, 'SECRETS_KEY_OLD \\(entry 2\\)'],
    ] as const) {
      let message = '';
      try {
        loadSecretKeys({ POOL_ENVIRONMENT: 'production', ...env }, tempDataDir());
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(new RegExp(`^${name} must be 32 random bytes`));
      expect(message).not.toContain(short);
      expect(message).not.toContain(garbage);
    }
    // base64url is accepted too.
    expect(secretKeyFromBase64(randomBytes(32).toString('base64url')).key).toHaveLength(32);
  });
});

describe('ciphertexts', () => {
  const key = secretKeyFromBase64(newKey());
  const oldKey = secretKeyFromBase64(newKey());
  const at = { instanceId: 'a1b2c3d4-0000-4000-8000-000000000001', name: 'instance-token' };

  it('are v2, bound to their instance and name', () => {
    const ciphertext = encryptSecret(key, 'tok-123', at);
    expect(ciphertext.split('.')).toHaveLength(5);
    expect(ciphertext.startsWith(`v2.${key.id}.`)).toBe(true);
    expect(decryptSecret([key], ciphertext, at)).toBe('tok-123');
    expect(() =>
      decryptSecret([key], ciphertext, { ...at, instanceId: 'a1b2c3d4-0000-4000-8000-000000000002' }),
    ).toThrow(/authentication failed/);
    expect(() => decryptSecret([key], ciphertext, { ...at, name: 'chat-url' })).toThrow(
      /authentication failed/,
    );
    // The separator keeps the boundary: ("ab", "c") is not ("a", "bc").
    const split = encryptSecret(key, 'x', { instanceId: 'ab', name: 'c' });
    expect(() => decryptSecret([key], split, { instanceId: 'a', name: 'bc' })).toThrow(
      /authentication failed/,
    );
    expect(() => encryptSecret(key, 'x', { instanceId: 'a\0b', name: 'c' })).toThrow(/NUL/);
  });

  it('v1 rows (no associated data) still decrypt; a v2 one relabelled v1 does not', () => {
    expect(decryptSecret([key], encryptV1(key, 'legacy'), at)).toBe('legacy');
    const downgraded = encryptSecret(key, 'tok', at).replace(/^v2\./, 'v1.');
    expect(() => decryptSecret([key], downgraded, at)).toThrow(/authentication failed/);
  });

  it('decrypt with whichever configured key wrote them, and name a missing key by id only', () => {
    const ciphertext = encryptSecret(oldKey, 'old-secret', at);
    expect(decryptSecret([key, oldKey], ciphertext, at)).toBe('old-secret');
    expect(() => decryptSecret([key], ciphertext, at)).toThrow(
      new RegExp(`written with key ${oldKey.id}, which is neither SECRETS_KEY nor in SECRETS_KEY_OLD`),
    );
    const [v, id, iv, tag, data] = ciphertext.split('.');
    const flipped = Buffer.from(data!, 'base64url');
    flipped[0]! ^= 1;
    expect(() =>
      decryptSecret([oldKey], [v, id, iv, tag, flipped.toString('base64url')].join('.'), at),
    ).toThrow(/authentication failed/);
    expect(() => decryptSecret([key], 'v3.x.y.z.w', at)).toThrow(/unknown format v3/);
  });
});

describe('SecretStore', () => {
  let client: PGlite;
  let db: Db;
  const k1 = secretKeyFromBase64(newKey());
  const k2 = secretKeyFromBase64(newKey());
  const inst = 'a1b2c3d4-0000-4000-8000-00000000000a';
  const other = 'a1b2c3d4-0000-4000-8000-00000000000b';

  const rowsOf = async () =>
    Object.fromEntries(
      (await db.select().from(schema.instanceSecrets)).map((r) => [
        `${r.instanceId}/${r.name}`,
        r.ciphertext,
      ]),
    );
  const setRow = (instanceId: string, name: string, ciphertext: string) =>
    db.insert(schema.instanceSecrets).values({ instanceId, name, ciphertext });

  beforeAll(async () => {
    client = new PGlite(); // in memory
    // The table as drizzle/migrations/0000_init.sql creates it (not the migrations themselves: this file
    // tests the store, not the schema history).
    await client.exec(`CREATE TABLE "instance_secrets" (
      "instance_id" text NOT NULL, "name" text NOT NULL, "ciphertext" text NOT NULL,
      "created_at" timestamp with time zone DEFAULT now() NOT NULL,
      CONSTRAINT "instance_secrets_instance_id_name_pk" PRIMARY KEY("instance_id","name"))`);
    db = drizzle(client, { schema }) as unknown as Db;
  });
  beforeEach(async () => {
    await db.delete(schema.instanceSecrets);
  });
  afterAll(async () => {
    await client.close();
  });

  it('writes v2 under SECRETS_KEY; a row copied to another instance or name does not decrypt', async () => {
    const store = new SecretStore(db, k1);
    await store.put(inst, 'instance-token', 'tok-1');
    await store.put(inst, 'chat-url', 'https://chat/1');
    expect(await store.get(inst, 'instance-token')).toBe('tok-1');
    expect(await store.getOrCreate(inst, 'wallet-key', () => 'w-1')).toBe('w-1');
    expect(await store.getOrCreate(inst, 'wallet-key', () => 'w-2')).toBe('w-1');
    const rows = await rowsOf();
    expect(Object.values(rows).every((c) => c.startsWith(`v2.${k1.id}.`))).toBe(true);

    // Someone with write access to the table moves a ciphertext: it no longer opens.
    await setRow(other, 'instance-token', rows[`${inst}/instance-token`]!);
    await expect(store.get(other, 'instance-token')).rejects.toThrow(/authentication failed/);
    await db
      .update(schema.instanceSecrets)
      .set({ ciphertext: rows[`${inst}/instance-token`]! })
      .where(eq(schema.instanceSecrets.name, 'chat-url'));
    await expect(store.get(inst, 'chat-url')).rejects.toThrow(/authentication failed/);
  });

  it('rotation: old-key rows still read, and reading one rewrites it under the new key', async () => {
    await new SecretStore(db, k1).put(inst, 'instance-token', 'tok-1');
    const before = (await rowsOf())[`${inst}/instance-token`]!;

    const rotated = new SecretStore(db, k2, [k1]); // SECRETS_KEY=k2, SECRETS_KEY_OLD=k1
    expect(await rotated.get(inst, 'instance-token')).toBe('tok-1');
    const after = (await rowsOf())[`${inst}/instance-token`]!;
    expect(after).not.toBe(before);
    expect(after.startsWith(`v2.${k2.id}.`)).toBe(true);

    // The row no longer needs the old key; the old key alone no longer reads it.
    expect(await new SecretStore(db, k2).get(inst, 'instance-token')).toBe('tok-1');
    await expect(new SecretStore(db, k1).get(inst, 'instance-token')).rejects.toThrow(
      new RegExp(`written with key ${k2.id}`),
    );
    // New writes use the current key.
    await rotated.put(inst, 'chat-url', 'https://chat/2');
    expect((await rowsOf())[`${inst}/chat-url`]!.startsWith(`v2.${k2.id}.`)).toBe(true);
  });

  it('a v1 row reads and is rewritten as v2 (bound) under the current key', async () => {
    await setRow(inst, 'instance-token', encryptV1(k1, 'legacy-tok'));
    const store = new SecretStore(db, k2, [k1]);
    expect(await store.get(inst, 'instance-token')).toBe('legacy-tok');
    const migrated = (await rowsOf())[`${inst}/instance-token`]!;
    expect(migrated.startsWith(`v2.${k2.id}.`)).toBe(true);
    expect(decryptSecret([k2], migrated, { instanceId: inst, name: 'instance-token' })).toBe('legacy-tok');
    // A v1 row under the current key is rewritten as v2 too (it gains the binding).
    await setRow(inst, 'chat-url', encryptV1(k2, 'https://chat/v1'));
    expect(await store.get(inst, 'chat-url')).toBe('https://chat/v1');
    expect((await rowsOf())[`${inst}/chat-url`]!.startsWith(`v2.${k2.id}.`)).toBe(true);
  });

  it('the lazy rewrite never overwrites a newer value (compare-and-set on the ciphertext read)', async () => {
    const old = encryptSecret(k1, 'stale', { instanceId: inst, name: 'instance-token' });
    await setRow(inst, 'instance-token', old);
    const store = new SecretStore(db, k2, [k1]);
    await store.put(inst, 'instance-token', 'fresh'); // lands between a read and its rewrite
    await (
      store as unknown as { rewrite(i: string, n: string, p: string, v: string): Promise<void> }
    ).rewrite(inst, 'instance-token', old, 'stale');
    expect(await store.get(inst, 'instance-token')).toBe('fresh');
  });

  it('reencryptAll migrates every row to v2 under the current key and reports what it cannot read', async () => {
    const stranger = secretKeyFromBase64(newKey());
    await setRow(inst, 'a', encryptSecret(k2, 'plain-current', { instanceId: inst, name: 'a' }));
    await setRow(inst, 'b', encryptSecret(k1, 'plain-old-v2', { instanceId: inst, name: 'b' }));
    await setRow(inst, 'c', encryptV1(k1, 'plain-old-v1'));
    await setRow(other, 'a', encryptV1(k2, 'plain-current-v1'));
    await setRow(
      other,
      'lost',
      encryptSecret(stranger, 'plain-unreadable', { instanceId: other, name: 'lost' }),
    );

    const store = new SecretStore(db, k2, [k1]);
    const report = await store.reencryptAll();
    expect(report.current).toBe(1);
    expect(report.reencrypted).toBe(3);
    expect(report.failed).toEqual([
      { instanceId: other, name: 'lost', error: expect.stringContaining(stranger.id) },
    ]);
    expect(JSON.stringify(report)).not.toContain('plain-'); // no secret in the report

    const rows = await rowsOf();
    for (const id of [`${inst}/a`, `${inst}/b`, `${inst}/c`, `${other}/a`])
      expect(rows[id]!.startsWith(`v2.${k2.id}.`)).toBe(true);
    const onlyNew = new SecretStore(db, k2); // SECRETS_KEY_OLD can now be dropped
    expect(await onlyNew.get(inst, 'b')).toBe('plain-old-v2');
    expect(await onlyNew.get(inst, 'c')).toBe('plain-old-v1');
    expect(await onlyNew.get(other, 'a')).toBe('plain-current-v1');
    expect((await store.reencryptAll()).reencrypted).toBe(0);
  });
});
