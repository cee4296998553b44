import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type PoolReport, PoolWakeups } from './pool-wakeups';

const report = (seq: number): PoolReport => ({ instanceId: `i${seq}`, status: 'claimed', seq });

describe('PoolWakeups', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends the first report at once and a burst as one signal at the end of the window', async () => {
    const sent: Array<[string, number]> = [];
    const wakeups = new PoolWakeups(async (pool, r) => {
      sent.push([pool, r.seq]);
    }, 250);
    wakeups.wake('a', report(1));
    expect(sent).toEqual([['a', 1]]);
    for (let seq = 2; seq <= 20; seq++) wakeups.wake('a', report(seq));
    wakeups.wake('b', report(100));
    // Another pool has its own window.
    expect(sent).toEqual([
      ['a', 1],
      ['b', 100],
    ]);
    await vi.advanceTimersByTimeAsync(250);
    // The latest of the burst, once.
    expect(sent).toEqual([
      ['a', 1],
      ['b', 100],
      ['a', 20],
    ]);
    // The trailing signal opened a window of its own; nothing came in it, so it closes quietly.
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(3);
    // After a quiet spell the next report goes at once again.
    wakeups.wake('a', report(21));
    expect(sent.at(-1)).toEqual(['a', 21]);
  });

  it('goes on after a failed signal', async () => {
    let calls = 0;
    const wakeups = new PoolWakeups(async () => {
      calls += 1;
      throw new Error('unavailable');
    }, 100);
    wakeups.wake('a', report(1));
    wakeups.wake('a', report(2));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toBe(2);
  });
});
