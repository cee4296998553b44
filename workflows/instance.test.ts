/**
 * The instance workflow on its own, with mocked activities (no database, no runtime): what it does when the
 * read model refuses its writes, when the runtime refuses a claim, and when provisioning fails on the instance.
 * Runs against the run's dev server in seconds.
 */
import { randomUUID } from 'node:crypto';
import { type Client, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../activities';
import type { TransitionRecord } from '../activities/read-model';
import { startMockWorker } from '../test/support/mock-worker';
import { claimUpdate, destroySignal, getStateQuery } from './messages';
import type { ClaimBinding, ClaimRequest, InstanceInput, InstanceTimings } from './types';

const timings: InstanceTimings = {
  startDeadlineMs: 10_000,
  healthIntervalMs: 500,
  healthFailuresAllowed: 2,
  idleTtlMs: 0,
  claimedTtlMs: 0,
  maxRestarts: 1,
  stepMaxAttempts: 2,
  maxHistoryEvents: 10_000,
};

/** What the mocked activities do; each test sets its own behaviour. */
const behaviour = {
  recordTransition: async (_record: TransitionRecord): Promise<void> => {},
  provision: async (input: { instanceId: string; request: ClaimRequest }): Promise<ClaimBinding> => ({
    instanceId: input.instanceId,
    agentName: input.request.agentName,
    conversationId: null,
    joined: false,
    status: 'created',
    hasInviteUrl: false,
    hasChatUrl: true,
  }),
};
const written: TransitionRecord[] = [];

const activities: Partial<Activities> = {
  recordTransition: async (record) => {
    written.push(record);
    return behaviour.recordTransition(record);
  },
  planResources: async () => [],
  createCompute: async (input) => ({ ref: input.instanceId, url: 'http://mock.invalid' }),
  destroyCompute: async () => {},
  checkHealth: async () => ({ reachable: true, ready: true }),
  provision: async (input) => behaviour.provision(input),
};

let client: Client;
let taskQueue: string;
let stopWorker: () => Promise<void>;

beforeAll(async () => {
  ({ client, taskQueue, stop: stopWorker } = await startMockWorker('instance-unit', activities));
});
afterAll(() => stopWorker?.());

async function startInstance() {
  const instanceId = randomUUID();
  const input: InstanceInput = { instanceId, poolName: 'unit', computeProvider: 'mock', timings };
  const handle = await client.workflow.start('instanceWorkflow', {
    taskQueue,
    workflowId: `instance-${instanceId}`,
    args: [input],
  });
  return { instanceId, handle };
}

async function waitForStatus(handle: Awaited<ReturnType<typeof startInstance>>['handle'], status: string) {
  const until = Date.now() + 20_000;
  for (;;) {
    const state = await handle.query(getStateQuery);
    if (state.status === status) return state;
    if (Date.now() > until) throw new Error(`still ${state.status}, not ${status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const claimRequest = (name = 'Unit'): ClaimRequest => ({
  claimKey: `unit-${randomUUID()}`,
  agentName: name,
  instructions: 'Be brief.',
  templateSlug: null,
  hasJoinUrl: false,
});

describe('the instance workflow with mocked activities', () => {
  it('goes on through its whole life when the read model refuses every write for its data', async () => {
    behaviour.recordTransition = async () => {
      throw ApplicationFailure.nonRetryable(
        'invalid byte sequence for encoding "UTF8": 0x00',
        'ReadModelDataError',
      );
    };
    try {
      const { handle } = await startInstance();
      const idle = await waitForStatus(handle, 'idle');
      expect(idle.readModelError).toMatch(/ReadModelDataError|0x00/);
      const request = claimRequest();
      const result = await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
      expect(result.agentName).toBe('Unit');
      await handle.signal(destroySignal, { actor: 'operator', reason: 'test' });
      // It finishes: nothing keeps retrying a write that can never succeed.
      await handle.result();
    } finally {
      behaviour.recordTransition = async () => {};
    }
  });

  it('a claim the runtime refuses leaves the instance idle, in its place, and can be followed by another', async () => {
    const { instanceId, handle } = await startInstance();
    const before = await waitForStatus(handle, 'idle');
    behaviour.provision = async () => {
      throw ApplicationFailure.nonRetryable('agentName must be a single line', 'ProvisionRefused');
    };
    const refused = claimRequest();
    const error = await handle
      .executeUpdate(claimUpdate, { updateId: refused.claimKey, args: [refused] })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((error as WorkflowUpdateFailedError).cause).toMatchObject({ type: 'ClaimRefused' });
    const after = await waitForStatus(handle, 'idle');
    expect(after.claim).toBeNull();
    expect(after.agentName).toBeNull();
    expect(after.idleAt).toBe(before.idleAt);
    expect(after.lastError).toBeNull();
    // The audit trail says what happened: claiming, then back to idle with the reason.
    const mine = written.filter((w) => w.instanceId === instanceId);
    expect(mine.at(-1)).toMatchObject({ to: 'idle', from: 'claiming' });
    expect(mine.at(-1)?.earlier?.[0]).toMatchObject({ to: 'claiming' });

    behaviour.provision = async (input) => ({
      instanceId: input.instanceId,
      agentName: input.request.agentName,
      conversationId: 'c1',
      joined: false,
      status: 'created',
      hasInviteUrl: true,
      hasChatUrl: false,
    });
    const good = claimRequest('Second');
    const result = await handle.executeUpdate(claimUpdate, { updateId: good.claimKey, args: [good] });
    expect(result.conversationId).toBe('c1');
    await waitForStatus(handle, 'claimed');
    // The same claim asked again gets the same answer; another claim is refused by the validator.
    expect(
      await handle.executeUpdate(claimUpdate, { updateId: `${good.claimKey}-again`, args: [good] }),
    ).toEqual(result);
    const other = claimRequest('Third');
    await expect(
      handle.executeUpdate(claimUpdate, { updateId: other.claimKey, args: [other] }),
    ).rejects.toMatchObject({ cause: { message: 'instance is claimed, not idle' } });
    await handle.terminate('test done');
  });

  it('a fault of the instance taints it: destroyed, and the API is told to try elsewhere', async () => {
    const { handle } = await startInstance();
    await waitForStatus(handle, 'idle');
    behaviour.provision = async () => {
      throw ApplicationFailure.nonRetryable('runtime failed provisioning (500)', 'RuntimeError');
    };
    const request = claimRequest();
    const error = await handle
      .executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] })
      .catch((err: unknown) => err);
    expect((error as WorkflowUpdateFailedError).cause).toMatchObject({ type: 'ProvisionFailed' });
    await handle.result();
    expect((await handle.query(getStateQuery)).status).toBe('destroyed');
  });
});
