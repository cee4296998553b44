/**
 * The claim's provision outlives a Postgres crash: the runtime provisioned the conversation, so a database that
 * is away for a few seconds must not fail the attempt (which would taint the instance and answer the claim 502).
 * Its secret-store reads and writes wait the database out; the `claimed` row is left to the workflow's own write.
 * A Postgres cluster of the test's own is crashed while the runtime answers.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CHAT_URL, INSTANCE_TOKEN } from '../contracts/secrets';
import { type Database, openDatabase } from '../drizzle/client';
import { type PostgresCluster, startPostgresCluster } from '../test/support/postgres-cluster';
import { type ActivityDeps, createActivities } from './index';
import type { TransitionRecord } from './read-model';
import { SecretStore, secretKeyFromBase64 } from './secret-store';

let postgres: PostgresCluster;
let database: Database;
let runtime: http.Server;
let runtimeUrl = '';
/** What the runtime does before it answers a provision (the test crashes Postgres there). */
let onProvision: () => Promise<void> = async () => {};

beforeAll(async () => {
  postgres = await startPostgresCluster();
  database = await openDatabase({ url: postgres.adminUrl, dataDir: '.data' });
  runtime = http.createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      await onProvision();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status: 'created',
          conversationId: 'conv-1',
          inviteUrl: null,
          joined: false,
          chatUrl: 'http://127.0.0.1/chat/secret',
        }),
      );
    });
  });
  await new Promise<void>((resolve) => runtime.listen(0, '127.0.0.1', resolve));
  runtimeUrl = `http://127.0.0.1:${(runtime.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  runtime?.close();
  await database?.close();
  await postgres?.destroy();
});

it('provisions through a Postgres crash: the links are stored once it is back, the claimed row is left to the workflow', async () => {
  const secrets = new SecretStore(database.db, secretKeyFromBase64(randomBytes(32).toString('base64')));
  const activities = createActivities({
    db: database.db,
    secrets,
    compute: {},
    runtimeEnv: {},
    resources: { enabled: {}, disabled: [] },
  } as unknown as ActivityDeps);
  const instanceId = randomUUID();
  await secrets.put(instanceId, INSTANCE_TOKEN, 'runtime-token');
  const claimKey = `key-${randomUUID()}`;
  const claimedRecord: TransitionRecord = {
    instanceId,
    poolName: 'provision-test',
    provider: 'standin',
    seq: 3,
    from: 'claiming',
    to: 'claimed',
    actor: 'api',
    reason: 'provisioned',
    at: new Date().toISOString(),
    fields: {},
  };
  let crashedAt = 0;
  let back: Promise<void> = Promise.resolve();
  onProvision = async () => {
    await postgres.crash();
    crashedAt = Date.now();
    back = (async () => {
      await new Promise((r) => setTimeout(r, 3000));
      await postgres.start();
    })();
  };

  const binding = await activities.provision({
    instanceId,
    url: runtimeUrl,
    request: {
      claimKey,
      agentName: 'Crash',
      instructions: 'Survive.',
      templateSlug: null,
      hasJoinUrl: false,
    } as Parameters<typeof activities.provision>[0]['request'],
    claimedRecord,
  });
  await back;

  expect(crashedAt).toBeGreaterThan(0);
  expect(binding).toMatchObject({
    instanceId,
    status: 'created',
    conversationId: 'conv-1',
    hasChatUrl: true,
  });
  // Not recorded here (the database was away when the runtime answered): the workflow writes `claimed` itself.
  expect(binding.recordedAt).toBeUndefined();
  // The bearer link was stored once Postgres came back, not lost with the crash.
  expect(await secrets.get(instanceId, CHAT_URL)).toBe('http://127.0.0.1/chat/secret');
}, 120_000);
