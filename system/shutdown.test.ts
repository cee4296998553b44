/**
 * The signal rules of system/shutdown.ts, on emitted signals (no real one is sent): the first one drains and
 * exits 0; a failed drain or one past its deadline exits 1; copies of the signal within the first second are
 * ignored, a later signal exits 1 at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from './logging';
import { onShutdownSignals, REPEAT_WINDOW_MS } from './shutdown';

const logger = createLogger({ level: 'silent' });
// Not SIGINT/SIGTERM: nothing else in this process should react.
const SIGNAL = 'SIGHUP' as const;
let dispose: () => void = () => {};
afterEach(() => dispose());

function setup(drain: () => Promise<void>, deadlineMs = 5_000) {
  const exits: Array<{ code: number; at: number }> = [];
  let drains = 0;
  const done = new Promise<void>((resolve) => {
    dispose = onShutdownSignals({
      logger,
      deadlineMs,
      signals: [SIGNAL],
      drain: () => {
        drains++;
        return drain();
      },
      exit: (code) => {
        exits.push({ code, at: Date.now() });
        resolve();
      },
    });
  });
  return { exits, drains: () => drains, done };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('onShutdownSignals', () => {
  it('drains once on the first signal and exits 0; copies of it within the repeat window are ignored', async () => {
    const s = setup(() => sleep(300));
    const at = Date.now();
    process.emit(SIGNAL, SIGNAL);
    process.emit(SIGNAL, SIGNAL); // the same signal relayed by npm, tsx, the process group
    await sleep(50);
    process.emit(SIGNAL, SIGNAL);
    await s.done;
    expect(s.drains()).toBe(1);
    expect(s.exits.map((e) => e.code)).toEqual([0]);
    expect(s.exits[0]!.at - at).toBeGreaterThanOrEqual(290);
  });

  it('exits 1 on a signal after the repeat window, without waiting for the drain', async () => {
    const s = setup(() => sleep(10_000));
    process.emit(SIGNAL, SIGNAL);
    await sleep(REPEAT_WINDOW_MS + 50);
    expect(s.exits).toEqual([]);
    process.emit(SIGNAL, SIGNAL);
    await s.done;
    expect(s.exits.map((e) => e.code)).toEqual([1]);
  });

  it('exits 1 when the drain fails', async () => {
    const s = setup(async () => {
      throw new Error('closing failed');
    });
    process.emit(SIGNAL, SIGNAL);
    await s.done;
    expect(s.exits.map((e) => e.code)).toEqual([1]);
  });

  it('exits 1 when the drain outlasts the deadline', async () => {
    const s = setup(() => sleep(10_000), 200);
    const at = Date.now();
    process.emit(SIGNAL, SIGNAL);
    await s.done;
    expect(s.exits.map((e) => e.code)).toEqual([1]);
    expect(s.exits[0]!.at - at).toBeLessThan(1_000);
  });
});
