import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ProvisionConflict,
  type ProvisionRequest,
  type ProvisionResult,
  ProvisionStore,
} from '../src/provision-store.ts';

const dirs: string[] = [];
function storeFile(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'provision-store-'));
  dirs.push(dir);
  return path.join(dir, 'provision.json');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const request: ProvisionRequest = { requestId: 'req-1', agentName: 'Ada', instructions: 'Be kind.' };

function countingWork(delayMs = 20) {
  let calls = 0;
  const work = async (req: ProvisionRequest): Promise<ProvisionResult> => {
    calls += 1;
    await new Promise((r) => setTimeout(r, delayMs));
    return {
      conversationId: `conv-${calls}-${req.requestId}`,
      inviteUrl: `https://example/${calls}`,
      joined: false,
      status: 'created',
    };
  };
  return { work, calls: () => calls };
}

describe('ProvisionStore', () => {
  it('runs the work once for concurrent and repeated calls with the same requestId', async () => {
    const store = new ProvisionStore(storeFile());
    const { work, calls } = countingWork();
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => store.provision(request, work)));
    expect(calls()).toBe(1);
    for (const r of results) expect(r).toEqual(results[0]);
    expect(await store.provision(request, work)).toEqual(results[0]);
    expect(calls()).toBe(1);
  });

  it('refuses a different request while one is in flight and after it finished', async () => {
    const store = new ProvisionStore(storeFile());
    const { work } = countingWork(50);
    const first = store.provision(request, work);
    await expect(store.provision({ ...request, requestId: 'req-2' }, work)).rejects.toMatchObject({
      code: 'provision_in_progress',
    });
    await first;
    const err = await store.provision({ ...request, requestId: 'req-2' }, work).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProvisionConflict);
    expect((err as ProvisionConflict).code).toBe('already_provisioned');
  });

  it('keeps the first result across restarts (a new store on the same file)', async () => {
    const file = storeFile();
    const { work, calls } = countingWork();
    const first = await new ProvisionStore(file).provision(request, work);
    const reopened = new ProvisionStore(file);
    expect(reopened.current()?.state).toBe('done');
    expect(await reopened.provision(request, work)).toEqual(first);
    expect(calls()).toBe(1);
    await expect(reopened.provision({ ...request, requestId: 'other' }, work)).rejects.toMatchObject({
      code: 'already_provisioned',
    });
  });

  it('retries a pending request after a crash with the original body, and refuses others', async () => {
    const file = storeFile();
    const crashed = new ProvisionStore(file);
    await expect(crashed.provision(request, async () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    const reopened = new ProvisionStore(file);
    expect(reopened.current()?.state).toBe('pending');
    await expect(
      reopened.provision({ ...request, requestId: 'other' }, countingWork().work),
    ).rejects.toMatchObject({
      code: 'already_provisioned',
    });
    const seen: ProvisionRequest[] = [];
    const result = await reopened.provision({ ...request, instructions: 'changed on retry' }, async (req) => {
      seen.push(req);
      return { conversationId: 'c', inviteUrl: null, joined: true, status: 'joined' };
    });
    expect(result.status).toBe('joined');
    expect(seen).toEqual([request]);
  });
});
