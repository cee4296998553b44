/** Small helpers shared by the end-to-end suites. */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import type { ClaimResponse } from '../../api/claims';
import type { StackOptions } from '../stack';

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
