// The agent's scheduled messages (src/scheduler.ts): limits per conversation, kept across a restart, sent
// once at their time (also when they fell due while the runtime was down), cancel, and the retry of a
// delivery the conversation refused. Real timers with a short minimum gap.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MAX_PENDING_TOTAL,
  NotDeliveredError,
  type ScheduledMessage,
  ScheduleError,
  Scheduler,
  validateScheduleRequest,
} from '../src/scheduler.ts';

const GROUP = 'convos:0123456789abcdef0123456789abcdef';
const OTHER = 'chat:session-other-1';
const LIMITS = { maxPending: 3, minGapMs: 200, maxAheadMs: 60_000 };

const dirs: string[] = [];
const running: Scheduler[] = [];
afterEach(() => {
  for (const s of running.splice(0)) s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function storeFile(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'scheduler-'));
  dirs.push(dir);
  return path.join(dir, 'scheduled.json');
}

interface Sent {
  conversation: string;
  text: string;
  at: number;
}

function scheduler(file: string, deliver?: (c: string, t: string) => Promise<void>) {
  const sent: Sent[] = [];
  const s = new Scheduler({
    file,
    limits: LIMITS,
    retryDelaysMs: [50],
    deliver:
      deliver ??
      (async (conversation, text) => {
        sent.push({ conversation, text, at: Date.now() });
      }),
  });
  running.push(s);
  return { s, sent };
}

const at = (ms: number) => new Date(Date.now() + ms).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function refusal(fn: () => unknown): { status: number; code: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof ScheduleError) return { status: err.status, code: err.code };
    throw err;
  }
  throw new Error('not refused');
}

describe('scheduled messages', () => {
  it('checks the request: one of at / in_minutes, a zone, text bounds, the conversation form', () => {
    expect(validateScheduleRequest({ conversation: GROUP, text: 'hi', inMinutes: 5 })).toEqual({
      conversation: GROUP,
      text: 'hi',
      inMinutes: 5,
    });
    expect(validateScheduleRequest({ conversation: GROUP, text: 'hi' })).toMatch(/either at/);
    expect(validateScheduleRequest({ conversation: GROUP, text: 'hi', inMinutes: 5, at: at(1000) })).toMatch(
      /not both/,
    );
    expect(validateScheduleRequest({ conversation: GROUP, text: 'hi', at: '2026-12-01T10:00:00' })).toMatch(
      /zone/,
    );
    expect(validateScheduleRequest({ conversation: GROUP, text: 'hi', inMinutes: -1 })).toMatch(/positive/);
    expect(validateScheduleRequest({ conversation: GROUP, text: ' ', inMinutes: 1 })).toMatch(/text/);
    expect(validateScheduleRequest({ conversation: GROUP, text: 'a\u0000b', inMinutes: 1 })).toMatch(/text/);
    expect(validateScheduleRequest({ conversation: 'convos:XYZ', text: 'hi', inMinutes: 1 })).toMatch(
      /conversation/,
    );
    expect(validateScheduleRequest({ conversation: GROUP, text: 'hi', inMinutes: 1, to: 'someone' })).toMatch(
      /unknown field/,
    );
  });

  it('enforces the limits per conversation: ahead of now, apart, not too far, not too many', () => {
    const { s } = scheduler(storeFile());
    expect(refusal(() => s.schedule({ conversation: GROUP, text: 'x', at: at(50) }))).toEqual({
      status: 400,
      code: 'too_soon',
    });
    expect(refusal(() => s.schedule({ conversation: GROUP, text: 'x', at: at(120_000) }))).toEqual({
      status: 400,
      code: 'too_far',
    });
    s.schedule({ conversation: GROUP, text: 'one', at: at(10_000) });
    expect(refusal(() => s.schedule({ conversation: GROUP, text: 'x', at: at(10_100) }))).toEqual({
      status: 409,
      code: 'too_close',
    });
    // Another conversation has its own spacing and count.
    s.schedule({ conversation: OTHER, text: 'other', at: at(10_100) });
    s.schedule({ conversation: GROUP, text: 'two', at: at(20_000) });
    s.schedule({ conversation: GROUP, text: 'three', at: at(30_000) });
    expect(refusal(() => s.schedule({ conversation: GROUP, text: 'x', at: at(40_000) }))).toEqual({
      status: 429,
      code: 'too_many',
    });
    expect(s.list(GROUP).map((m) => m.text)).toEqual(['one', 'two', 'three']);
    expect(s.list(OTHER).map((m) => m.text)).toEqual(['other']);
  });

  it('bounds the total across conversations (chat sessions are the browser’s choice)', () => {
    const s = new Scheduler({
      file: storeFile(),
      limits: { ...LIMITS, maxPending: 1 },
      deliver: async () => {},
    });
    for (let i = 0; i < MAX_PENDING_TOTAL; i++)
      s.schedule({ conversation: `chat:session-${String(i).padStart(4, '0')}`, text: 'x', at: at(10_000) });
    expect(refusal(() => s.schedule({ conversation: GROUP, text: 'x', at: at(10_000) })).code).toBe(
      'too_many',
    );
  });

  it('sends each message once, at its time, into the conversation it was scheduled in', async () => {
    const { s, sent } = scheduler(storeFile());
    s.start();
    const first = s.schedule({ conversation: GROUP, text: 'stretch', at: at(300) });
    s.schedule({ conversation: OTHER, text: 'water', at: at(500) });
    await sleep(800);
    expect(sent.map(({ conversation, text }) => ({ conversation, text }))).toEqual([
      { conversation: GROUP, text: 'stretch' },
      { conversation: OTHER, text: 'water' },
    ]);
    expect(Math.abs((sent[0]?.at ?? 0) - Date.parse(first.dueAt))).toBeLessThan(100);
    expect(s.list(GROUP)).toEqual([]);
    expect(s.all().every((m) => m.state === 'sent')).toBe(true);
  });

  it('cancels only a pending message of the same conversation', async () => {
    const { s, sent } = scheduler(storeFile());
    s.start();
    const m = s.schedule({ conversation: GROUP, text: 'cancel me', at: at(300) });
    expect(refusal(() => s.cancel(OTHER, m.id))).toEqual({ status: 404, code: 'not_found' });
    expect(s.cancel(GROUP, m.id).state).toBe('cancelled');
    expect(refusal(() => s.cancel(GROUP, m.id)).code).toBe('not_found');
    await sleep(500);
    expect(sent).toEqual([]);
  });

  it('keeps messages across a restart; one that fell due while down is sent on start, once', async () => {
    const file = storeFile();
    const before = scheduler(file);
    const down = before.s.schedule({ conversation: GROUP, text: 'fell due while down', at: at(250) });
    const later = before.s.schedule({ conversation: GROUP, text: 'after the restart', at: at(900) });
    // Never started: the runtime "stopped" before either was due.
    expect(JSON.parse(readFileSync(file, 'utf8')).map((m: ScheduledMessage) => m.id)).toEqual([
      down.id,
      later.id,
    ]);
    await sleep(400);
    const after = scheduler(file);
    after.s.start();
    await sleep(100);
    expect(after.sent.map((x) => x.text)).toEqual(['fell due while down']);
    await sleep(900);
    expect(after.sent.map((x) => x.text)).toEqual(['fell due while down', 'after the restart']);
    expect(Math.abs((after.sent[1]?.at ?? 0) - Date.parse(later.dueAt))).toBeLessThan(100);
    after.s.stop();
    // A third start sends nothing again.
    const again = scheduler(file);
    again.s.start();
    await sleep(200);
    expect(again.sent).toEqual([]);
  });

  it('never sends twice a message that was being handed over when the runtime stopped', async () => {
    const file = storeFile();
    const { s } = scheduler(file);
    const m = s.schedule({ conversation: GROUP, text: 'mid-send', at: at(10_000) });
    const stored = JSON.parse(readFileSync(file, 'utf8')) as ScheduledMessage[];
    writeFileSync(
      file,
      JSON.stringify(stored.map((e) => ({ ...e, state: 'sending', dueAt: new Date().toISOString() }))),
    );
    const after = scheduler(file);
    after.s.start();
    await sleep(200);
    expect(after.sent).toEqual([]);
    expect(after.s.all().find((e) => e.id === m.id)?.state).toBe('failed');
  });

  it('retries a delivery the conversation refused before sending; gives up on a permanent refusal or an unknown failure', async () => {
    let refuse = 2;
    const sent: string[] = [];
    const { s } = scheduler(storeFile(), async (conversation, text) => {
      if (conversation === 'chat:gone-session-1') throw new NotDeliveredError('ended', true);
      if (conversation === 'chat:timeout-session') throw new Error('timed out');
      if (refuse-- > 0) throw new NotDeliveredError('no chat page is open');
      sent.push(text);
    });
    s.start();
    const retried = s.schedule({ conversation: GROUP, text: 'eventually', at: at(250) });
    const gone = s.schedule({ conversation: 'chat:gone-session-1', text: 'x', at: at(250) });
    const unknown = s.schedule({ conversation: 'chat:timeout-session', text: 'x', at: at(250) });
    await sleep(650);
    expect(sent).toEqual(['eventually']);
    const state = (id: string) => s.all().find((e) => e.id === id);
    expect(state(retried.id)).toMatchObject({ state: 'sent', attempts: 3 });
    expect(state(gone.id)).toMatchObject({ state: 'failed', attempts: 1 });
    expect(state(unknown.id)).toMatchObject({ state: 'failed', attempts: 1 });
  });

  it('retries at once for a conversation that became able to take it (retryNow)', async () => {
    let open = false;
    const sent: number[] = [];
    const s = new Scheduler({
      file: storeFile(),
      limits: LIMITS,
      retryDelaysMs: [60_000],
      deliver: async () => {
        if (!open) throw new NotDeliveredError('no chat page is open');
        sent.push(Date.now());
      },
    });
    running.push(s);
    s.start();
    s.schedule({ conversation: OTHER, text: 'waiting', at: at(250) });
    await sleep(300);
    expect(sent).toEqual([]);
    open = true;
    const opened = Date.now();
    s.retryNow(OTHER);
    await sleep(50);
    expect(sent).toHaveLength(1);
    expect((sent[0] ?? 0) - opened).toBeLessThan(50);
  });
});
