/**
 * The claim Update's validator and handler at their edges, with mocked activities against the run's dev server:
 * what a claim that is not admitted gets back, that it leaves the instance as it was (nothing recorded, nothing
 * provisioned), and that a repeat of the claim an instance holds gets the same answer, across continue-as-new.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimRequest,
  type Harness,
  notReady,
  provisioned,
  ready,
  sleep,
  startHarness,
  type TestInstance,
  waitForState,
  waitForStatus,
} from '../../test/support/instance-harness';
import {
  claimUpdate,
  destroySignal,
  drainInstanceUpdate,
  getStateQuery,
  healthChangedSignal,
} from '../messages';
import type { ClaimRequest } from '../types';
import { isTransition } from './transitions';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness('claim-unit');
});
afterAll(async () => {
  await harness?.stop();
});

/** Sends a claim and returns the failure the caller gets (the Update's cause), or throws if it was accepted. */
async function refusal(instance: TestInstance, request: unknown, updateId = `u-${Math.random()}`) {
  const error = await instance.handle
    .executeUpdate(claimUpdate, { updateId, args: [request as ClaimRequest] })
    .then(
      (result) => {
        throw new Error(`accepted: ${JSON.stringify(result)}`);
      },
      (err: unknown) => err,
    );
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (error as WorkflowUpdateFailedError).cause as {
    type?: string;
    message: string;
    nonRetryable?: boolean;
  };
  return { type: cause.type, message: cause.message, nonRetryable: cause.nonRetryable };
}

const recorded = (instanceId: string) => harness.seen.filter((t) => t.instanceId === instanceId).length;

describe.concurrent('the claim validator', () => {
  it('refuses a claim unless the instance is idle, and a contract check comes after that', async () => {
    const instance = await harness.start({ script: { health: () => notReady } });
    await waitForStatus(instance.handle, 'starting');
    expect(await refusal(instance, claimRequest())).toMatchObject({
      message: 'instance is starting, not idle',
    });
    // Not idle wins over a bad name: the caller is told to look elsewhere, not that its request is wrong.
    expect(await refusal(instance, claimRequest('   '))).toMatchObject({
      type: 'Error',
      message: 'instance is starting, not idle',
    });
    instance.script.health = () => ready;
    await waitForStatus(instance.handle, 'idle');
    const request = claimRequest();
    await instance.handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    expect(await refusal(instance, claimRequest('Other'))).toMatchObject({
      message: 'instance is claimed, not idle',
    });
    await instance.handle.signal(destroySignal, { actor: 'operator', reason: 'test' });
    await instance.handle.result();
    expect(instance.calls.filter((c) => c === 'provision')).toHaveLength(1);
  });

  it('refuses a claim and a drain once a destroy was requested', async () => {
    // The idle phase takes a destroy request in the workflow task that delivered it (it sleeps on signals
    // since the health sweeper), so the request and the teardown are what a claim can meet: a slow teardown.
    let release: () => void = () => {};
    const instance = await harness.start({
      script: { destroyCompute: () => new Promise<void>((r) => (release = r)) },
    });
    await waitForStatus(instance.handle, 'idle');
    await instance.handle.signal(destroySignal, { actor: 'operator', reason: 'kill' });
    await waitForStatus(instance.handle, 'destroying');
    expect(await refusal(instance, claimRequest())).toMatchObject({
      message: 'instance is destroying, not idle',
    });
    await expect(
      instance.handle.executeUpdate(drainInstanceUpdate, { args: [{ actor: 'operator', reason: 'drain' }] }),
    ).rejects.toMatchObject({
      cause: { message: 'instance is destroying: only idle or starting instances are drained' },
    });
    await waitForState(instance.handle, () => instance.calls.includes('destroyCompute'), 'the teardown');
    release();
    await instance.handle.result();
    expect(instance.calls).not.toContain('provision');
  });

  it('refuses a second claim while the first is provisioning, even one with the same key', async () => {
    let finish: () => void = () => {};
    const instance = await harness.start({ workflowTaskTimeout: '2s' });
    instance.script.provision = async (request) => {
      await new Promise<void>((r) => (finish = r));
      return provisioned(instance.instanceId, request);
    };
    await waitForStatus(instance.handle, 'idle');
    const first = claimRequest('First');
    const pending = instance.handle.executeUpdate(claimUpdate, { updateId: first.claimKey, args: [first] });
    await waitForState(instance.handle, () => instance.calls.includes('provision'), 'provisioning');
    expect((await instance.handle.query(getStateQuery)).status).toBe('claiming');
    // Provisioning is a local activity: the workflow task is held meanwhile, and other Updates are only seen at
    // its next heartbeat (80% of the workflow task timeout). A repeat that reaches the instance anyway (the API
    // holds the claim's lease meanwhile) is not admitted either.
    const [second, repeat] = await Promise.all([
      refusal(instance, claimRequest('Second')),
      refusal(instance, first, `${first.claimKey}-again`),
    ]);
    expect(second).toMatchObject({ message: 'instance is claiming, not idle' });
    expect(repeat).toMatchObject({ message: 'instance is claiming, not idle' });
    finish();
    expect(await pending).toEqual(provisioned(instance.instanceId, first));
    await instance.handle.terminate('test done');
  });

  it('answers a repeat of the held claim with the same result, whatever the instance is doing', async () => {
    const instance = await harness.start();
    await waitForStatus(instance.handle, 'idle');
    const request = claimRequest('Held');
    const result = await instance.handle.executeUpdate(claimUpdate, {
      updateId: request.claimKey,
      args: [request],
    });
    expect(
      await instance.handle.executeUpdate(claimUpdate, {
        updateId: `${request.claimKey}-2`,
        args: [request],
      }),
    ).toEqual(result);
    // Crashed and restarting: the claim still holds, and so does its answer.
    let restarted: () => void = () => {};
    instance.script.health = () => notReady;
    instance.script.restartCompute = async () => {
      await new Promise<void>((r) => (restarted = r));
      return { ref: instance.instanceId, url: 'http://mock.invalid' };
    };
    await waitForStatus(instance.handle, 'crashed');
    expect(
      await instance.handle.executeUpdate(claimUpdate, {
        updateId: `${request.claimKey}-3`,
        args: [request],
      }),
    ).toEqual(result);
    // The key decides, not the rest of the request; a different key is another claim.
    expect(
      await instance.handle.executeUpdate(claimUpdate, {
        updateId: `${request.claimKey}-4`,
        args: [{ ...request, agentName: 'Changed' }],
      }),
    ).toEqual(result);
    expect(await refusal(instance, claimRequest('Held'))).toMatchObject({
      message: 'instance is crashed, not idle',
    });
    expect(instance.calls.filter((c) => c === 'provision')).toHaveLength(1);
    await instance.handle.terminate('test done');
    restarted();
  });

  it('answers a repeat of the held claim after continue-as-new (Update ids dedupe only within a run)', async () => {
    const instance = await harness.start({ timings: { maxHistoryEvents: 40 } });
    await waitForStatus(instance.handle, 'idle');
    const request = claimRequest('Long-lived');
    const result = await instance.handle.executeUpdate(claimUpdate, {
      updateId: request.claimKey,
      args: [request],
    });
    const firstRun = (await instance.handle.describe()).runId;
    const until = Date.now() + 20_000;
    // A claimed instance with a healthy runtime records nothing: stale health reports (ignored) grow its history.
    const stale = { seq: 0, healthy: false, failures: 1, gone: false, error: 'stale' };
    while ((await instance.handle.describe()).runId === firstRun) {
      if (Date.now() > until) throw new Error('never continued as new');
      await instance.handle.signal(healthChangedSignal, stale).catch(() => {});
      await sleep(100);
    }
    const state = await instance.handle.query(getStateQuery);
    expect(state).toMatchObject({ status: 'claimed', claim: request, result, seq: 4 });
    expect(
      await instance.handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] }),
    ).toEqual(result);
    expect(await refusal(instance, claimRequest())).toMatchObject({
      message: 'instance is claimed, not idle',
    });
    await instance.handle.signal(destroySignal, { actor: 'operator', reason: 'test' });
    await instance.handle.result();
    expect(instance.calls.filter((c) => c === 'provision')).toHaveLength(1);
    expect(recorded(instance.instanceId)).toBe(6);
  });

  it('refuses a claim that breaks the claim contract as ClaimRefused, leaving the instance idle', async () => {
    const instance = await harness.start();
    const idle = await waitForStatus(instance.handle, 'idle');
    const cases: [Record<string, unknown>, string][] = [
      [{ agentName: '   ' }, 'agentName must not be blank'],
      [{ agentName: 'x'.repeat(65) }, 'agentName must be at most 64 characters'],
      [
        { agentName: 'bell\u0007' },
        'agentName must be one line of 1–64 characters, without control or format characters (U+0007 at position 4)',
      ],
      [
        { agentName: 'two\nlines' },
        'agentName must be one line of 1–64 characters, without control or format characters (U+000A at position 3)',
      ],
      [{ agentName: undefined }, 'agentName must be a string'],
      [{ agentName: 42 }, 'agentName must be a string'],
      [{ instructions: 'y'.repeat(20_001) }, 'instructions must be at most 20000 characters'],
      [
        { instructions: 'ok\u202Eevil' },
        'instructions must be text without control characters (other than tabs and line breaks) or format characters (U+202E at position 2)',
      ],
    ];
    for (const [change, message] of cases) {
      expect(await refusal(instance, { ...claimRequest(), ...change })).toEqual({
        type: 'ClaimRefused',
        message,
        nonRetryable: true,
      });
    }
    expect(await instance.handle.query(getStateQuery)).toEqual(idle);
    expect(idle.seq).toBe(2);
    expect(instance.calls).not.toContain('provision');
    // Still claimable.
    const request = claimRequest('Fine');
    await instance.handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    await instance.handle.terminate('test done');
  });

  it('refuses a claim with missing fields before anything else', async () => {
    const instance = await harness.start({ script: { health: () => notReady } });
    await waitForStatus(instance.handle, 'starting');
    const missing = 'claim needs claimKey, agentName and instructions';
    const { claimKey: _k, ...noKey } = claimRequest();
    const { instructions: _i, ...noInstructions } = claimRequest();
    for (const request of [
      null,
      {},
      noKey,
      { ...claimRequest(), claimKey: '' },
      noInstructions,
      { ...claimRequest(), instructions: 7 },
    ]) {
      expect(await refusal(instance, request)).toMatchObject({ type: 'Error', message: missing });
    }
    expect(recorded(instance.instanceId)).toBe(1);
    await instance.handle.terminate('test done');
  });
});

describe.concurrent('recording the outcome', () => {
  /** The instance's recorded transitions from `claiming` on (the deferred `claiming` comes with `claimed`). */
  const fromClaiming = (instanceId: string) => {
    const mine = harness.seen.filter((t) => t.instanceId === instanceId);
    return mine.slice(mine.findIndex((t) => t.to === 'claiming'));
  };

  for (const [how, recordsItself] of [
    ['the provision activity records `claimed` itself, with the runtime answer', true],
    ['the workflow records `claimed` itself when the activity could not', false],
  ] as const) {
    it(how, async () => {
      const instance = await harness.start({ script: { provisionRecordsClaimed: recordsItself } });
      await waitForStatus(instance.handle, 'idle');
      const request = claimRequest();
      const result = await instance.handle.executeUpdate(claimUpdate, {
        updateId: request.claimKey,
        args: [request],
      });
      // The Update's answer is the binding alone (nothing of how it was recorded).
      expect(result).toEqual(provisioned(instance.instanceId, request));
      await waitForState(instance.handle, () => fromClaiming(instance.instanceId).length === 2, 'claimed');
      const [claiming, claimed] = fromClaiming(instance.instanceId);
      expect(claiming).toMatchObject({ from: 'idle', to: 'claiming' });
      expect(claimed).toMatchObject({
        seq: claiming!.seq + 1,
        from: 'claiming',
        to: 'claimed',
        reason: 'provisioned: created',
        fields: { conversationId: `conversation-${request.claimKey}`, claimKey: request.claimKey },
      });
      // Written once, and the workflow's state says what the row says.
      const state = await instance.handle.query(getStateQuery);
      expect(state).toMatchObject({ status: 'claimed', seq: claimed!.seq });
      expect(state.claimedAt).toBe(claimed!.fields!.claimedAt);
      await instance.handle.terminate('test done');
      expect(fromClaiming(instance.instanceId)).toHaveLength(2);
    });
  }
});

describe('the claim tests and the table', () => {
  it('recorded only transitions of the table', () => {
    expect(harness.seen.length).toBeGreaterThan(10);
    expect(harness.seen.filter((t) => !isTransition(t.from, t.to))).toEqual([]);
  });
});
