/** The health sweeper's decision: signal only after N misses in a row at one `seq`, and nothing while healthy. */
import { describe, expect, it } from 'vitest';
import { forEachLimited, HealthTracker } from './health-sweeper';

const ok = { reachable: true, ready: true };
const miss = { reachable: false, ready: false, error: 'fetch failed' };

describe('HealthTracker', () => {
  it('says nothing while a runtime answers, and once after N misses in a row', () => {
    const t = new HealthTracker(3);
    const i = { id: 'a', seq: 2 };
    for (let k = 0; k < 100; k++) expect(t.observe(i, ok)).toBeNull();
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, ok)).toBeNull(); // not in a row
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).toEqual({
      seq: 2,
      healthy: false,
      failures: 3,
      gone: false,
      error: 'fetch failed',
    });
    // Still the same row after the report: said again only after N further misses.
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).toBeNull();
    expect(t.observe(i, miss)).not.toBeNull();
  });

  it('counts as all misses at once a runtime its provider reports gone', () => {
    const t = new HealthTracker(3);
    expect(t.observe({ id: 'a', seq: 1 }, { ...miss, gone: true })).toMatchObject({
      gone: true,
      failures: 3,
    });
  });

  it('starts again at a new seq (a restart, a claim), and keeps counts across a handover', () => {
    const t = new HealthTracker(2);
    expect(t.observe({ id: 'a', seq: 4 }, miss)).toBeNull();
    expect(t.observe({ id: 'a', seq: 6 }, miss)).toBeNull();
    const next = new HealthTracker(2);
    next.restore(t.details());
    expect(t.details()).toEqual([['a', 6, 1]]);
    expect(next.observe({ id: 'a', seq: 6 }, miss)).toMatchObject({ seq: 6, failures: 2 });
    next.retain(new Set());
    expect(next.details()).toEqual([]);
  });
});

it('forEachLimited keeps at most `limit` in flight', async () => {
  let inFlight = 0;
  let most = 0;
  await forEachLimited([...Array(20).keys()], 4, async () => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight -= 1;
  });
  expect(most).toBe(4);
});
