/**
 * Every row of the lifecycle table, driven through the real workflow with mocked activities against the run's
 * dev server (test/support/instance-harness.ts), and the proof that the table and the code agree: every
 * transition any instance recorded is a row of the table, and every row was gone through.
 */
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimRequest,
  type Harness,
  notReady,
  provisioned,
  ready,
  sleep,
  startHarness,
  waitForState,
  waitForStatus,
} from '../../test/support/instance-harness';
import { covered, expectPath, rowKey } from '../../test/support/lifecycle-paths';
import {
  claimUpdate,
  destroySignal,
  drainInstanceUpdate,
  getStateQuery,
  joinAcceptedSignal,
  retrySignal,
} from '../messages';
import { findTransition, isTransition, TRANSITIONS, transitionProblem } from './transitions';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness('lifecycle-unit');
});
afterAll(async () => {
  await harness?.stop();
});

const operator = { actor: 'operator', reason: 'test' } as const;

describe('the table', () => {
  it('has one row per (from, event), and every status but destroyed can be left', () => {
    const keys = TRANSITIONS.map(rowKey);
    expect(new Set(keys).size).toBe(keys.length);
    const leavable = new Set(TRANSITIONS.map((t) => t.from));
    for (const status of [
      'starting',
      'idle',
      'claiming',
      'pending_acceptance',
      'claimed',
      'crashed',
      'failed',
      'destroying',
    ] as const) {
      expect(leavable.has(status)).toBe(true);
    }
    expect(leavable.has('destroyed')).toBe(false);
  });

  it('names what is not a transition', () => {
    expect(transitionProblem('starting', 'runtimeReady', 'idle')).toBeNull();
    expect(transitionProblem('idle', 'provisioned', 'claimed')).toBe(
      'no transition from idle on provisioned',
    );
    expect(transitionProblem('claimed', 'healthFailed', 'destroying')).toBe(
      'claimed on healthFailed goes to crashed, not destroying',
    );
    expect(transitionProblem(null, 'runtimeReady', 'idle')).toBe('no transition from (new) on runtimeReady');
    expect(findTransition('destroyed', 'destroyRequested')).toBeUndefined();
    expect(isTransition('claimed', 'idle')).toBe(false);
  });
});

describe.concurrent('every transition of the table, through the workflow', () => {
  it('starting → idle → claiming → claimed → destroying → destroyed (destroy signal)', async () => {
    const { instanceId, handle } = await harness.start();
    const idle = await waitForStatus(handle, 'idle');
    expect(idle.idleAt).not.toBeNull();
    const request = claimRequest('Happy');
    const result = await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    expect(result).toEqual(provisioned(instanceId, request));
    const claimed = await waitForStatus(handle, 'claimed');
    expect(claimed).toMatchObject({ agentName: 'Happy', claim: request, result });
    expect(claimed.claimedAt).not.toBeNull();
    await handle.signal(destroySignal, operator);
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisioned',
      'destroyRequested',
      'resourcesReleased',
    ]);
    expect(path.map((t) => t.reason)).toEqual([
      'pool started the instance',
      'runtime ready',
      `claim ${request.claimKey}`,
      'provisioned: created',
      'test',
      'all resources released',
    ]);
  });

  it('starting → destroying when drained while starting', async () => {
    const { instanceId, handle, calls } = await harness.start({ script: { health: () => notReady } });
    await waitForState(handle, () => calls.includes('createCompute'), 'compute created');
    await handle.executeUpdate(drainInstanceUpdate, { args: [{ actor: 'operator', reason: 'pool drain' }] });
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'destroyRequested',
      'resourcesReleased',
    ]);
    expect(path[1]?.reason).toBe('pool drain');
    expect(calls).toEqual(['createCompute', 'destroyCompute']);
  });

  it('starting → destroying at the start deadline', async () => {
    const { instanceId, handle } = await harness.start({
      timings: { startDeadlineMs: 1200 },
      script: { health: () => notReady },
    });
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'startDeadlinePassed',
      'resourcesReleased',
    ]);
    expect(path[1]?.reason).toBe('not ready within the start deadline (1200 ms)');
  });

  it('starting → destroying when a provider step is rejected, releasing what was created in reverse', async () => {
    const { instanceId, handle, calls } = await harness.start({
      script: {
        plan: [
          { kind: 'wallet', provider: 'local' },
          { kind: 'llm', provider: 'openrouter' },
        ],
        createCompute: async () => {
          throw ApplicationFailure.nonRetryable('no such region', 'ProviderRejectedError');
        },
      },
    });
    await handle.result();
    const path = await expectPath(harness, instanceId, ['poolStarted', 'startFailed', 'resourcesReleased']);
    expect(path[1]?.reason).toBe('start failed: no such region');
    // Rejected: not retried. Compensation: compute by its name first, then the resources in reverse.
    expect(calls).toEqual([
      'createResource:wallet',
      'createResource:llm',
      'createCompute',
      'destroyCompute',
      'releaseResource:llm',
      'releaseResource:wallet',
    ]);
    expect((await handle.query(getStateQuery)).resources).toEqual([
      { kind: 'wallet', provider: 'local', ref: `wallet-${instanceId}`, released: true },
      { kind: 'llm', provider: 'openrouter', ref: `llm-${instanceId}`, released: true },
      { kind: 'compute', provider: 'mock', ref: null, released: true },
    ]);
  });

  it('a step that keeps failing is retried stepMaxAttempts times, then the start fails', async () => {
    let attempts = 0;
    const { instanceId, handle } = await harness.start({
      script: {
        createCompute: async () => {
          attempts += 1;
          throw ApplicationFailure.retryable('provider unavailable', 'ProviderUnavailableError');
        },
      },
    });
    await handle.result();
    await expectPath(harness, instanceId, ['poolStarted', 'startFailed', 'resourcesReleased']);
    expect(attempts).toBe(2);
  });

  it('starting → destroying when the runtime exits while booting', async () => {
    const { instanceId, handle } = await harness.start({
      script: { health: () => ({ reachable: false, ready: false, gone: true }) },
    });
    await handle.result();
    const path = await expectPath(harness, instanceId, ['poolStarted', 'runtimeExited', 'resourcesReleased']);
    expect(path[1]?.reason).toBe('the runtime exited while starting');
  });

  it('idle → destroying on the destroy signal', async () => {
    const { instanceId, handle } = await harness.start();
    await waitForStatus(handle, 'idle');
    await handle.signal(destroySignal, { actor: 'operator', reason: 'kill' });
    await handle.result();
    await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'destroyRequested',
      'resourcesReleased',
    ]);
  });

  it('idle → destroying at the idle TTL', async () => {
    const { instanceId, handle } = await harness.start({ timings: { idleTtlMs: 600 } });
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'idleTtlPassed',
      'resourcesReleased',
    ]);
    expect(path[2]?.reason).toBe('idle for longer than its TTL (600 ms)');
  });

  it('idle → destroying when health fails N times in a row', async () => {
    const { instanceId, handle, script } = await harness.start();
    await waitForStatus(handle, 'idle');
    script.health = () => ({ reachable: false, ready: false, error: 'connection refused' });
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'healthFailed',
      'resourcesReleased',
    ]);
    expect(path[2]?.reason).toBe('health failed 2 times in a row: connection refused');
  });

  it('claiming → idle when the runtime refuses the request, then a second claim succeeds', async () => {
    const { instanceId, handle, script } = await harness.start();
    const before = await waitForStatus(handle, 'idle');
    script.provision = async () => {
      throw ApplicationFailure.nonRetryable('agentName must be a single line', 'ProvisionRefused');
    };
    const refused = claimRequest();
    await expect(
      handle.executeUpdate(claimUpdate, { updateId: refused.claimKey, args: [refused] }),
    ).rejects.toMatchObject({ cause: { type: 'ClaimRefused', message: 'agentName must be a single line' } });
    const after = await waitForStatus(handle, 'idle');
    expect(after).toMatchObject({ claim: null, agentName: null, templateSlug: null, idleAt: before.idleAt });
    script.provision = async (request) => provisioned(instanceId, request);
    const good = claimRequest('Second');
    await handle.executeUpdate(claimUpdate, { updateId: good.claimKey, args: [good] });
    await handle.signal(destroySignal, operator);
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisionRefused',
      'claimAccepted',
      'provisioned',
      'destroyRequested',
      'resourcesReleased',
    ]);
    expect(path[3]?.reason).toBe(`claim ${refused.claimKey} refused: agentName must be a single line`);
  });

  /** A join the runtime answered `waiting_for_acceptance` for. */
  const waiting = (instanceId: string) => async (request: Parameters<typeof provisioned>[1]) => ({
    ...provisioned(instanceId, request),
    conversationId: null,
    joined: false,
    status: 'waiting_for_acceptance' as const,
  });

  it('claiming → pending_acceptance → claimed when the runtime reports the acceptance (others ignored)', async () => {
    const { instanceId, handle, script } = await harness.start();
    script.provision = waiting(instanceId);
    await waitForStatus(handle, 'idle');
    const request = claimRequest('Joiner', { hasJoinUrl: true });
    const result = await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    expect(result).toMatchObject({ status: 'waiting_for_acceptance', conversationId: null, joined: false });
    const pending = await waitForStatus(handle, 'pending_acceptance');
    expect(pending.acceptanceDueAt).not.toBeNull();
    expect(pending.claimedAt).toBeNull();
    // A report about another claim changes nothing.
    await handle.signal(joinAcceptedSignal, { requestId: 'another-claim', conversationId: 'c0ffee' });
    await sleep(300);
    expect((await handle.query(getStateQuery)).status).toBe('pending_acceptance');
    await handle.signal(joinAcceptedSignal, {
      requestId: request.claimKey,
      conversationId: 'abcdef0123456789',
    });
    const claimed = await waitForStatus(handle, 'claimed');
    expect(claimed.result).toMatchObject({
      conversationId: 'abcdef0123456789',
      joined: true,
      status: 'joined',
    });
    expect(claimed.claimedAt).not.toBeNull();
    // The claim's repeat answers what the instance holds now.
    expect(await handle.executeUpdate(claimUpdate, { args: [request] })).toMatchObject({ status: 'joined' });
    await handle.signal(destroySignal, operator);
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisionedPendingAcceptance',
      'joinAccepted',
      'destroyRequested',
      'resourcesReleased',
    ]);
    expect(path[4]?.reason).toBe('the conversation accepted the join');
  });

  it('pending_acceptance → destroying when the join is not accepted in time, the reason recorded', async () => {
    const { instanceId, handle, script } = await harness.start({ timings: { joinAcceptTimeoutMs: 800 } });
    script.provision = waiting(instanceId);
    await waitForStatus(handle, 'idle');
    const request = claimRequest('Unanswered', { hasJoinUrl: true });
    await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisionedPendingAcceptance',
      'acceptanceTimedOut',
      'resourcesReleased',
    ]);
    expect(path[4]?.reason).toBe('the join was not accepted within 800 ms');
    expect((await handle.query(getStateQuery)).lastError).toBe('the join was not accepted within 800 ms');
  });

  it('pending_acceptance → destroying on a destroy request', async () => {
    const { instanceId, handle, script } = await harness.start();
    script.provision = waiting(instanceId);
    await waitForStatus(handle, 'idle');
    const request = claimRequest('Dropped', { hasJoinUrl: true });
    await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    await waitForStatus(handle, 'pending_acceptance');
    await handle.signal(destroySignal, operator);
    await handle.result();
    await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisionedPendingAcceptance',
      'destroyRequested',
      'resourcesReleased',
    ]);
  });

  it('claiming → destroying when provisioning fails on the instance (a rejection is not retried)', async () => {
    const { instanceId, handle, calls } = await harness.start({
      script: {
        provision: async () => {
          // Retryable as thrown, but the claim's retry policy lists ProvisionRejected as non-retryable.
          throw ApplicationFailure.retryable('runtime refused provisioning (409)', 'ProvisionRejected');
        },
      },
    });
    await waitForStatus(handle, 'idle');
    const request = claimRequest();
    await expect(
      handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] }),
    ).rejects.toMatchObject({
      cause: { type: 'ProvisionFailed', message: 'provisioning failed: runtime refused provisioning (409)' },
    });
    await handle.result();
    await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisionFailed',
      'resourcesReleased',
    ]);
    expect(calls.filter((c) => c === 'provision')).toHaveLength(1);
  });

  it('a runtime error during provisioning is tried three times before the instance is tainted', async () => {
    const { instanceId, handle, calls } = await harness.start({
      script: {
        provision: async () => {
          throw ApplicationFailure.retryable('runtime failed provisioning (500)', 'RuntimeError');
        },
      },
    });
    await waitForStatus(handle, 'idle');
    const request = claimRequest();
    await expect(
      handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] }),
    ).rejects.toMatchObject({ cause: { type: 'ProvisionFailed' } });
    await handle.result();
    await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisionFailed',
      'resourcesReleased',
    ]);
    expect(calls.filter((c) => c === 'provision')).toHaveLength(3);
  });

  it('claimed → destroying at the claimed TTL', async () => {
    const { instanceId, handle } = await harness.start({ timings: { claimedTtlMs: 600 } });
    await waitForStatus(handle, 'idle');
    const request = claimRequest();
    await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisioned',
      'claimedTtlPassed',
      'resourcesReleased',
    ]);
    expect(path[4]?.reason).toBe('claimed for longer than its TTL (600 ms)');
  });

  it("claimed → destroying when the conversation was quiet for longer than the claim's lifetime", async () => {
    const { instanceId, handle, script } = await harness.start();
    await waitForStatus(handle, 'idle');
    // While messages go through, the instance stays; once they stop, it is reclaimed.
    let talking = true;
    script.health = () => ({ ...ready, lastActivityAt: talking ? new Date().toISOString() : null });
    const request = claimRequest('Quiet', { conversationIdleTtlMs: 700 });
    await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    await sleep(1500);
    expect((await handle.query(getStateQuery)).status).toBe('claimed');
    talking = false;
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisioned',
      'conversationQuiet',
      'resourcesReleased',
    ]);
    expect(path[4]?.reason).toBe("its conversation was quiet for longer than the claim's lifetime (700 ms)");
  });

  it('claimed → crashed when health fails, crashed → claimed once restarted', async () => {
    const { instanceId, handle, script, calls } = await harness.start();
    await waitForStatus(handle, 'idle');
    const request = claimRequest();
    await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    script.restartCompute = async () => {
      script.health = () => ready;
      return { ref: instanceId, url: 'http://mock-restarted.invalid' };
    };
    script.health = () => ({ reachable: true, ready: false, error: 'gateway down' });
    await waitForState(handle, () => calls.includes('restartCompute'), 'a restart');
    const back = await waitForStatus(handle, 'claimed');
    expect(back).toMatchObject({ restarts: 0, lastError: null, url: 'http://mock-restarted.invalid' });
    await handle.signal(destroySignal, operator);
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisioned',
      'healthFailed',
      'runtimeRestarted',
      'destroyRequested',
      'resourcesReleased',
    ]);
    expect(path[4]?.reason).toBe('health failed 2 times in a row: gateway down');
    expect(path[5]?.reason).toBe('runtime restarted from its state');
  });

  it('crashed → destroying on the destroy signal while it waits for the restarted runtime', async () => {
    const { instanceId, handle, script, calls } = await harness.start();
    await waitForStatus(handle, 'idle');
    const request = claimRequest();
    await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    script.health = () => notReady;
    await waitForState(handle, () => calls.includes('restartCompute'), 'a restart');
    await handle.signal(destroySignal, { actor: 'operator', reason: 'dismiss' });
    await handle.result();
    await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisioned',
      'healthFailed',
      'destroyRequested',
      'resourcesReleased',
    ]);
  });

  it('crashed → failed when restarts are exhausted; failed → crashed on retry; back to claimed', async () => {
    const { instanceId, handle, script } = await harness.start();
    await waitForStatus(handle, 'idle');
    const request = claimRequest();
    await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    script.restartCompute = async () => {
      throw ApplicationFailure.nonRetryable('machine gone', 'ProviderRejectedError');
    };
    script.health = () => notReady;
    const failed = await waitForStatus(handle, 'failed');
    expect(failed).toMatchObject({
      failedStep: 'restart',
      restarts: 1,
      lastError: 'restart failed: machine gone',
    });
    // A retry while it is failed restarts it again (a retry elsewhere is ignored).
    script.restartCompute = async () => {
      script.health = () => ready;
      return { ref: instanceId, url: 'http://mock-restarted.invalid' };
    };
    await handle.signal(retrySignal, { actor: 'operator', reason: 'retry' });
    await waitForStatus(handle, 'claimed');
    await handle.signal(retrySignal, { actor: 'operator', reason: 'ignored' });
    await handle.signal(destroySignal, operator);
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisioned',
      'healthFailed',
      'restartsExhausted',
      'retryRestart',
      'runtimeRestarted',
      'destroyRequested',
      'resourcesReleased',
    ]);
    expect(path[5]?.reason).toBe(
      'runtime did not come back after 1 restarts; retry restarts it again, kill destroys it',
    );
    expect(path[6]?.reason).toBe('retry');
  });

  it('failed → destroying on the destroy signal', async () => {
    const { instanceId, handle, script } = await harness.start();
    await waitForStatus(handle, 'idle');
    const request = claimRequest();
    await handle.executeUpdate(claimUpdate, { updateId: request.claimKey, args: [request] });
    script.restartCompute = async () => {
      throw ApplicationFailure.nonRetryable('machine gone', 'ProviderRejectedError');
    };
    script.health = () => notReady;
    await waitForStatus(handle, 'failed');
    await handle.signal(destroySignal, { actor: 'operator', reason: 'kill' });
    await handle.result();
    await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'claimAccepted',
      'provisioned',
      'healthFailed',
      'restartsExhausted',
      'destroyRequested',
      'resourcesReleased',
    ]);
    expect((await handle.query(getStateQuery)).failedStep).toBeNull();
  });

  it('destroying → failed when a release fails; failed → destroying on retry resumes where it stopped', async () => {
    const { instanceId, handle, script, calls } = await harness.start({
      script: {
        plan: [{ kind: 'wallet', provider: 'local' }],
        releaseResource: async () => {
          throw ApplicationFailure.nonRetryable('wallet store locked', 'ProviderRejectedError');
        },
      },
    });
    await waitForStatus(handle, 'idle');
    await handle.signal(destroySignal, operator);
    const failed = await waitForStatus(handle, 'failed');
    expect(failed).toMatchObject({
      failedStep: 'destroy',
      lastError: 'teardown failed: wallet store locked',
    });
    script.releaseResource = async () => {};
    await handle.signal(retrySignal, { actor: 'operator', reason: 'retry teardown' });
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'destroyRequested',
      'teardownFailed',
      'retryTeardown',
      'resourcesReleased',
    ]);
    expect(path[3]?.reason).toBe('teardown failed: wallet store locked; retry resumes the teardown');
    // Compute was released before the failure and is not released twice.
    expect(calls).toEqual([
      'createResource:wallet',
      'createCompute',
      'destroyCompute',
      'releaseResource:wallet',
      'releaseResource:wallet',
    ]);
  });

  it('a destroy signal while destroying or destroyed changes nothing', async () => {
    const { instanceId, handle, script, calls } = await harness.start();
    await waitForStatus(handle, 'idle');
    let release: () => void = () => {};
    script.destroyCompute = () => new Promise<void>((r) => (release = r));
    await handle.signal(destroySignal, { actor: 'operator', reason: 'first' });
    await waitForState(
      handle,
      (s) => s.status === 'destroying' && calls.includes('destroyCompute'),
      'teardown',
    );
    await handle.signal(destroySignal, { actor: 'operator', reason: 'second' });
    release();
    await handle.result();
    const path = await expectPath(harness, instanceId, [
      'poolStarted',
      'runtimeReady',
      'destroyRequested',
      'resourcesReleased',
    ]);
    expect(path[2]?.reason).toBe('first');
    expect(harness.seen.filter((t) => t.instanceId === instanceId)).toHaveLength(4);
  });
});

describe('the table and the code agree', () => {
  it('every transition an instance recorded is a row of the table', () => {
    expect(harness.seen.length).toBeGreaterThan(50);
    const strays = harness.seen.filter((t) => !isTransition(t.from, t.to));
    expect(strays).toEqual([]);
  });

  it('every row of the table was gone through by a test above', () => {
    const missing = TRANSITIONS.map(rowKey).filter((key) => !covered.has(key));
    expect(missing).toEqual([]);
  });
});
