/**
 * Read-model writes tell a refusal of their data (never retried) from a database that is away (retried).
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Database, openDatabase } from '../drizzle/client';
import { classifyDatabaseError, type TransitionRecord, writeTransition } from './read-model';

let database: Database;
beforeAll(async () => {
  database = await openDatabase({ url: inject('databaseUrl'), dataDir: '.data' });
});
afterAll(() => database?.close());

const record = (agentName: string): TransitionRecord => ({
  instanceId: randomUUID(),
  poolName: 'read-model-test',
  provider: 'mock',
  seq: 1,
  from: null,
  to: 'starting',
  actor: 'pool',
  reason: 'test',
  at: new Date().toISOString(),
  fields: { agentName },
});

describe('classifyDatabaseError', () => {
  it('makes a write Postgres refuses for its data (U+0000) a non-retryable ReadModelDataError', async () => {
    const err = await writeTransition(database.db, record('A\u0000B')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const classified = classifyDatabaseError(err);
    expect(classified).toBeInstanceOf(ApplicationFailure);
    expect(classified).toMatchObject({ type: 'ReadModelDataError', nonRetryable: true });
    expect((classified as Error).message).toMatch(/SQLSTATE 22/);
  });

  it('leaves a database that cannot be reached to the retry policy', async () => {
    const away = await openDatabase({ url: 'postgres://postgres@127.0.0.1:1/none', dataDir: '.data' }).catch(
      (e: unknown) => e,
    );
    expect(away).toBeInstanceOf(Error);
    expect(classifyDatabaseError(away)).toBe(away);
  });

  it('writes good data as before', async () => {
    await expect(writeTransition(database.db, record('Émile 👨‍👩‍👧'))).resolves.toBeUndefined();
  });
});
