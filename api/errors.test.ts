/**
 * What a client can only retry is a 503 with Retry-After, never a 500: Temporal unavailable and the database
 * unavailable (a refused connection, an admin shutdown, a connection exception), through drizzle's wrapper too.
 */

import { ServiceError } from '@temporalio/client';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freePort } from '../test/support/ports';
import { isWorkflowTaskFailing, unavailable } from './errors';

describe('unavailable()', () => {
  it('makes a database that refuses connections a 503 DATABASE_UNAVAILABLE with Retry-After', async () => {
    const port = await freePort();
    const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${port}/none`, max: 1 });
    const db = drizzle(pool);
    const err = await db.execute('select 1').then(
      () => null,
      (e: unknown) => e,
    );
    await pool.end();
    expect(err).toBeTruthy();
    const mapped = unavailable(err);
    expect(mapped).toMatchObject({ statusCode: 503, code: 'DATABASE_UNAVAILABLE' });
    expect(mapped?.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('leaves anything else to the error handler', () => {
    expect(unavailable(new Error('boom'))).toBeNull();
  });
});

describe('isWorkflowTaskFailing()', () => {
  /** A gRPC error as @grpc/grpc-js makes it (code, details, metadata). */
  const grpcError = (code: number, details: string) =>
    Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });

  it('knows an Update refused because the workflow task is failing, wrapped by the client or not', () => {
    const cause = grpcError(
      9,
      'Unable to perform workflow execution update due to Workflow Task in failed state.',
    );
    expect(isWorkflowTaskFailing(new ServiceError('Workflow Update failed', { cause }))).toBe(true);
    expect(isWorkflowTaskFailing(cause)).toBe(true);
  });

  it('is not any other FAILED_PRECONDITION or code', () => {
    expect(isWorkflowTaskFailing(grpcError(9, 'Namespace is not active'))).toBe(false);
    expect(isWorkflowTaskFailing(grpcError(3, 'Workflow Task in failed state'))).toBe(false);
    expect(isWorkflowTaskFailing(new Error('Workflow Task in failed state'))).toBe(false);
  });
});
