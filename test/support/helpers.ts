/** Small helpers shared by the end-to-end suites. */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
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

export interface ClaimBody {
  instanceId: string;
  agentName: string;
  conversationId: string | null;
  inviteUrl: string | null;
  joined: boolean;
  warm: boolean;
  status: string;
  chatUrl?: string;
}

export interface ErrorBody {
  error: string;
  code: string;
}

export async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}
