/**
 * Issue 9's worst finding, on the real runtime: one claim with a name the runtime refuses used to destroy
 * every idle instance (the refusal was taken for a tainted instance and the claim moved on to the next). Here
 * the pool runs real OpenClaw runtimes through the local compute provider, with an instant stand-in model:
 * the edge refuses such claims, and a request that does reach the runtime and is refused there leaves the
 * instance idle and healthy; the next good claim gets that very instance.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRuntime } from '../activities/compute';
import { LocalComputeProvider } from '../activities/compute/local';
import { startModelServer } from '../runtime/test/support/model-server';
import { claimUpdate, getStateQuery } from '../workflows/messages';
import type { ClaimRequest } from '../workflows/types';
import { type Stack, startStack } from './stack';
import { type ClaimBody, type ErrorBody, json, newKey, shared } from './support/helpers';

// OpenClaw boots in ~40 s on an idle 2-core machine, several minutes on a loaded one.
const BOOT_MS = 420_000;

let stack: Stack;
let local: LocalComputeProvider;
let model: Awaited<ReturnType<typeof startModelServer>>;
const instancesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convos-real-runtime-'));

beforeAll(async () => {
  model = await startModelServer(() => 'Hello from the stand-in model.');
  local = new LocalComputeProvider({ instancesDir, ...localRuntime({ LOCAL_RUNTIME: 'openclaw' }) });
  stack = await startStack(
    shared({
      targetIdle: 1,
      maxTotal: 2,
      computeFor: () => local,
      runtimeEnv: { MODEL_BASE_URL: model.url, MODEL: 'stand-in' },
      timings: { startDeadlineMs: BOOT_MS, healthIntervalMs: 2_000, healthFailuresAllowed: 5 },
    }),
  );
  await stack.waitFor('a real runtime idle', async () => (await stack.counts()).idle === 1, BOOT_MS);
}, BOOT_MS + 60_000);

afterAll(async () => {
  await stack?.stop();
  await local?.stopAll();
  await model?.close();
  fs.rmSync(instancesDir, { recursive: true, force: true });
}, 120_000);

const idleId = async () =>
  (await json<{ idle: Array<{ id: string }> }>(await stack.api('GET', '/api/pool/agents'))).idle.map(
    (i) => i.id,
  );

describe('the real runtime and a claim it would refuse', () => {
  it('refuses a two-line name and oversize instructions at the edge; a refusal by the runtime is not a taint', async () => {
    const [id] = await idleId();
    expect(id).toBeDefined();

    for (const body of [{ agentName: 'Line one\nLine two' }, { instructions: 'x'.repeat(20_001) }]) {
      const res = await stack.api('POST', '/api/pool/claim', body, { 'idempotency-key': newKey('refused') });
      expect(res.status).toBe(400);
      expect((await json<ErrorBody>(res)).code).toBe('BAD_REQUEST');
    }
    expect(await idleId()).toEqual([id]);

    // A request that gets past the workflow but not past the runtime (its request id breaks the runtime's
    // rules): the real runtime answers 400, and the instance goes back to idle, untouched.
    const handle = stack.temporal.workflow.getHandle(`instance-${id}`);
    const request: ClaimRequest = {
      claimKey: 'a key with spaces',
      agentName: 'Marigold',
      instructions: 'Be brief.',
      templateSlug: null,
      hasJoinUrl: false,
    };
    await expect(
      handle.executeUpdate(claimUpdate, { updateId: 'direct-refusal', args: [request] }),
    ).rejects.toMatchObject({ cause: { type: 'ClaimRefused', message: expect.stringMatching(/requestId/) } });
    const state = await handle.query(getStateQuery);
    expect(state.status).toBe('idle');
    expect(state.claim).toBeNull();
    expect(await idleId()).toEqual([id]);
    expect((await stack.counts()).destroying).toBe(0);

    // The instance is still healthy and unprovisioned: the next good claim gets it, with a working chat.
    const res = await stack.api(
      'POST',
      '/api/pool/claim',
      { agentName: 'Marigold' },
      { 'idempotency-key': newKey('good') },
    );
    expect(res.status).toBe(200);
    const body = await json<ClaimBody>(res);
    expect(body.instanceId).toBe(id);
    expect(body.chatUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/chat\//);
  }, 180_000);
});
