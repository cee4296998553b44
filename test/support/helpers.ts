/** Small helpers shared by the end-to-end suites. */
import { randomUUID } from 'node:crypto';
import { expect, inject } from 'vitest';
import type { ClaimResponse } from '../../api/claims';
import type { Stack, StackOptions } from '../stack';

/** Stack options that reuse the run's dev server, database and workflow bundle (test/global-setup.ts). */
export function shared(opts: StackOptions = {}): StackOptions {
  return {
    temporalAddress: inject('temporalAddress'),
    databaseUrl: inject('databaseUrl'),
    workflowBundlePath: inject('workflowBundlePath'),
    ...opts,
  };
}

export const newKey = (prefix = 'k') => `${prefix}-${randomUUID()}`;

/** A claim's 200 body. */
export type ClaimBody = ClaimResponse;

export interface ErrorBody {
  error: string;
  code: string;
}

export async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

/** Claims one instance as `name` once one is idle; the claim must succeed. */
export async function claimOne(stack: Stack, name: string): Promise<ClaimBody> {
  await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
  const res = await stack.api(
    'POST',
    '/api/pool/claim',
    { agentName: name },
    { 'idempotency-key': newKey(name) },
  );
  expect(res.status).toBe(200);
  return json<ClaimBody>(res);
}
