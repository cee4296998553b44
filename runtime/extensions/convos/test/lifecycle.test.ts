import { afterEach, describe, expect, it } from 'vitest';
import { acquireService, findService, releaseService, resetRegistry } from '../src/registry.js';
import { resolveSettings } from '../src/settings.js';
import { FakeNetwork } from './fake-xmtp.js';
import { eventually, identities, makeService, RecordingAgent, tempStateDir } from './helpers.js';

afterEach(() => resetRegistry());

describe('start/stop across plugin reloads', () => {
  it('shares one service per state dir and stops it only when the last generation releases it', async () => {
    const net = new FakeNetwork();
    const dir = await tempStateDir('reload');
    let created = 0;
    const create = () => {
      created++;
      return makeService(net, dir, new RecordingAgent('Ada'));
    };
    // Generation 1 starts and provisions.
    const s1 = await acquireService(dir, create);
    const res = await s1.provision({ requestId: 'r', agentName: 'Ada', instructions: '' });
    const [record] = await identities(dir);
    await eventually(() => net.openStreamCount(record?.inboxId ?? '') === 1);
    // Generation 2 (module re-evaluated) starts before generation 1's abort is processed.
    const s2 = await acquireService(dir, create);
    await releaseService(dir);
    expect(s2).toBe(s1);
    expect(created).toBe(1);
    expect(findService(dir)?.status()).toEqual({ state: 'ready' });
    // Still exactly one stream and one client for the identity: no second transport on the same DB.
    expect(net.openStreamCount(record?.inboxId ?? '')).toBe(1);
    expect(await s2.provision({ requestId: 'r', agentName: 'Ada', instructions: '' })).toEqual(res);
    // The last release stops the transport.
    await releaseService(dir);
    await eventually(() => net.openStreamCount(record?.inboxId ?? '') === 0);
    expect(findService(dir)?.status()).toEqual({ state: 'starting' });
    // And a later start brings it back.
    await acquireService(dir, create);
    await eventually(() => net.openStreamCount(record?.inboxId ?? '') === 1);
    await releaseService(dir);
  });
});

describe('settings', () => {
  it('come from channels.convos, then XMTP_ENV / CONVOS_STATE_DIR / STATE_DIR', () => {
    expect(resolveSettings({}, { XMTP_ENV: 'dev', CONVOS_STATE_DIR: '/s/convos' })).toEqual({
      enabled: true,
      env: 'dev',
      stateDir: '/s/convos',
      joinWaitMs: 15_000,
    });
    expect(
      resolveSettings({ env: 'production', stateDir: '/x', joinWaitMs: 5 }, { XMTP_ENV: 'dev' }),
    ).toEqual({
      enabled: true,
      env: 'production',
      stateDir: '/x',
      joinWaitMs: 5,
    });
    expect(resolveSettings({}, { XMTP_ENV: 'local', STATE_DIR: '/state' })).toMatchObject({
      stateDir: '/state/convos',
    });
    expect(resolveSettings({}, { XMTP_ENV: 'off', CONVOS_STATE_DIR: '/s' })).toEqual({
      enabled: false,
      reason: 'XMTP_ENV=off',
    });
    expect(resolveSettings({}, { XMTP_ENV: 'mainnet', CONVOS_STATE_DIR: '/s' })).toMatchObject({
      enabled: false,
    });
    expect(resolveSettings({}, {})).toMatchObject({ enabled: false });
    // Never the working directory.
    expect(resolveSettings({}, { XMTP_ENV: 'dev' })).toMatchObject({
      enabled: false,
      reason: expect.stringMatching(/state dir/),
    });
    expect(resolveSettings({ enabled: false }, { XMTP_ENV: 'dev', CONVOS_STATE_DIR: '/s' })).toMatchObject({
      enabled: false,
    });
  });
});
