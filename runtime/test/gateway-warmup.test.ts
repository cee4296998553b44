import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv } from '../src/env.ts';
import { KeepWarmSession } from '../src/gateway-warmup.ts';

const base = {
  INSTANCE_ID: 'i',
  INSTANCE_TOKEN: '0123456789abcdef0123',
  PORT: '18000',
  STATE_DIR: '/tmp/kw',
};

describe('GATEWAY_KEEP_WARM_SECONDS', () => {
  it('defaults to every 20 s, 0 turns it off, and anything else is refused by name', () => {
    expect(loadEnv(base).keepWarmMs).toBe(20_000);
    expect(loadEnv({ ...base, GATEWAY_KEEP_WARM_SECONDS: '0' }).keepWarmMs).toBe(0);
    expect(loadEnv({ ...base, GATEWAY_KEEP_WARM_SECONDS: '45' }).keepWarmMs).toBe(45_000);
    for (const bad of ['-1', '2.5', 'often', '3601'])
      expect(() => loadEnv({ ...base, GATEWAY_KEEP_WARM_SECONDS: bad })).toThrow(
        new EnvError('GATEWAY_KEEP_WARM_SECONDS must be a whole number from 0 to 3600'),
      );
  });
});

describe('KeepWarmSession', () => {
  it('keeps one probe session until it is an hour old, then starts another', () => {
    let now = 1_000_000;
    const session = new KeepWarmSession(3_600_000, () => now);
    const first = session.current();
    // OpenClaw's probe shape, which its session maintenance prunes (a chat or channel session never is).
    expect(first).toMatch(/^agent:main:explicit:model-run-[0-9a-f-]{36}$/);
    now += 3_599_999;
    expect(session.current()).toBe(first);
    now += 1;
    const second = session.current();
    expect(second).not.toBe(first);
    expect(second).toMatch(/^agent:main:explicit:model-run-/);
    now += 60_000;
    expect(session.current()).toBe(second);
  });
});
