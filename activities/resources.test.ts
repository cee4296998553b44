/**
 * What a runtime gets from its resources: their non-secret variables and their own secrets, decrypted —
 * except a wallet's private key, which no runtime gets any more (docs/providers.md "Bankr").
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ResourceMetadata } from '../contracts/resources';
import { type Database, openDatabase } from '../drizzle/client';
import { instanceResources } from '../drizzle/schema';
import { resourceEnvironment } from './resources';
import { SecretStore, secretKeyFromBase64 } from './secret-store';

let database: Database;
beforeAll(async () => {
  database = await openDatabase({ url: inject('databaseUrl'), dataDir: '.data' });
});
afterAll(() => database?.close());

describe('resourceEnvironment', () => {
  it("hands the runtime its inbox and LLM key, never a wallet's private key", async () => {
    const secrets = new SecretStore(database.db, secretKeyFromBase64(randomBytes(32).toString('base64')));
    const instanceId = `res-${randomUUID()}`;
    const row = (kind: string, metadata: ResourceMetadata) => ({
      instanceId,
      kind,
      provider: kind,
      ref: `${kind}-ref`,
      metadata,
    });
    await database.db
      .insert(instanceResources)
      .values([
        row('wallet', { env: { WALLET_ADDRESS: '0xabc' }, secretEnv: 'WALLET_PRIVATE_KEY' }),
        row('llmKey', { env: {}, secretEnv: 'OPENROUTER_API_KEY' }),
        row('inbox', { env: { AGENTMAIL_INBOX_ID: 'a@agentmail.to' } }),
      ]);
    await secrets.put(instanceId, 'resource:wallet', `0x${'11'.repeat(32)}`);
    await secrets.put(instanceId, 'resource:llmKey', 'sk-or-own-key');
    expect(await resourceEnvironment(database.db, secrets, instanceId)).toEqual({
      OPENROUTER_API_KEY: 'sk-or-own-key',
      AGENTMAIL_INBOX_ID: 'a@agentmail.to',
    });
  });
});
