// Replenish and drain as a progress stream (SSE) for the console: the change is asked of the API once, then
// every instance it started or drains is followed through the API until it is done. Events:
//   instance {id, state, status, reason?}  state: started → ready | failed      (replenish)
//                                                  draining → drained | failed  (drain)
//                                          each instance's state is sent when it changes
//   complete {ok: true, kind, ids, ready, drained, failed, pending}  (pending: still not done at the deadline)
//          | {ok: false, status, code, error}                          (the API refused the change)

import { changePool, type PoolChange } from './admin';
import { ApiError, call } from './api';
import type { SiteEnvironment } from './config';
import { formatSse } from './sse';
import type { AgentGroups, InstanceDetail } from './types';

export type ProgressState = 'started' | 'ready' | 'draining' | 'drained' | 'failed';

export interface InstanceProgress {
  id: string;
  state: ProgressState;
  /** The instance's status in the read model ('gone' once it is no longer listed and has no detail). */
  status: string;
  reason?: string;
}

export interface ProgressOptions {
  pollMs?: number;
  /** How long instances are followed (the start deadline of a pool is a few minutes). */
  deadlineMs?: number;
}

/** Where one instance is, from its status (and its last error) in the read model. */
export function progressOf(
  kind: PoolChange,
  id: string,
  status: string,
  lastError: string | null,
): InstanceProgress {
  if (kind === 'replenish') {
    if (status === 'idle' || status === 'claiming' || status === 'claimed')
      return { id, state: 'ready', status };
    if (
      status === 'failed' ||
      status === 'crashed' ||
      status === 'destroying' ||
      status === 'destroyed' ||
      status === 'gone'
    )
      return {
        id,
        state: 'failed',
        status,
        reason: lastError ?? `the instance is ${status} before it was ready`,
      };
    return { id, state: 'started', status };
  }
  if (status === 'destroyed' || status === 'gone') return { id, state: 'drained', status };
  if (status === 'failed') return { id, state: 'failed', status, reason: lastError ?? 'its destroy failed' };
  return { id, state: 'draining', status };
}

const done = (p: InstanceProgress) => p.state === 'ready' || p.state === 'drained' || p.state === 'failed';

/** Each followed instance's status: one listing per round, a detail only for those no longer listed. */
async function statuses(env: SiteEnvironment, ids: string[]) {
  const groups = await call<AgentGroups>('/api/pool/agents', { auth: true, env });
  const listed = new Map<string, { status: string; lastError: string | null }>();
  for (const group of Object.values(groups))
    for (const a of Array.isArray(group) ? group : []) listed.set(a.id, a);
  const out = new Map<string, { status: string; lastError: string | null }>();
  for (const id of ids) {
    const hit = listed.get(id);
    if (hit) {
      out.set(id, hit);
      continue;
    }
    try {
      const d = await call<InstanceDetail>(`/api/pool/instances/${encodeURIComponent(id)}`, {
        auth: true,
        env,
      });
      out.set(id, { status: d.status, lastError: d.lastError });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) out.set(id, { status: 'gone', lastError: null });
      else throw err;
    }
  }
  return out;
}

export function streamPoolChange(
  env: SiteEnvironment,
  kind: PoolChange,
  count: number,
  signal: AbortSignal,
  opts: ProgressOptions = {},
): Response {
  const pollMs = opts.pollMs ?? 1_000;
  const deadlineMs = opts.deadlineMs ?? 5 * 60_000;
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (event: string, data: unknown) => {
        if (!signal.aborted) controller.enqueue(enc.encode(formatSse(event, data)));
      };
      try {
        let ids: string[];
        try {
          ids = await changePool(env, kind, count);
        } catch (err) {
          const e =
            err instanceof ApiError
              ? err
              : new ApiError(502, 'API_UNREACHABLE', 'The pool API did not answer.');
          send('complete', { ok: false, status: e.status, code: e.code, error: e.message });
          return;
        }
        const last = new Map<string, InstanceProgress>();
        const first: ProgressState = kind === 'replenish' ? 'started' : 'draining';
        for (const id of ids) {
          const p: InstanceProgress = {
            id,
            state: first,
            status: kind === 'replenish' ? 'starting' : 'destroying',
          };
          last.set(id, p);
          send('instance', p);
        }
        const end = Date.now() + deadlineMs;
        while (!signal.aborted && [...last.values()].some((p) => !done(p)) && Date.now() < end) {
          await new Promise((r) => setTimeout(r, pollMs));
          const pending = [...last.values()].filter((p) => !done(p)).map((p) => p.id);
          let seen: Awaited<ReturnType<typeof statuses>>;
          try {
            seen = await statuses(env, pending);
          } catch {
            continue; // The API hiccupped: the next round asks again, until the deadline.
          }
          for (const id of pending) {
            const s = seen.get(id);
            if (!s) continue;
            const p = progressOf(kind, id, s.status, s.lastError);
            const before = last.get(id);
            if (before?.state !== p.state || before.status !== p.status) {
              last.set(id, p);
              send('instance', p);
            }
          }
        }
        const all = [...last.values()];
        send('complete', {
          ok: true,
          kind,
          ids,
          ready: all.filter((p) => p.state === 'ready').length,
          drained: all.filter((p) => p.state === 'drained').length,
          failed: all.filter((p) => p.state === 'failed').length,
          pending: all.filter((p) => !done(p)).length,
        });
      } finally {
        try {
          controller.close();
        } catch {}
      }
    },
  });
  return new Response(stream, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    },
  });
}
