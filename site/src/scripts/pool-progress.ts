// Replenish and drain with live progress: the forms marked `data-stream` post to /admin/pool-stream and
// show each instance's way to ready / drained / failed (with the reason) as the server streams it. Without
// JS, or when the stream cannot start, the form posts to /admin/action as before.
import { SseParser } from '../lib/sse';

interface InstanceEvent {
  id: string;
  state: string;
  status: string;
  reason?: string;
}
interface CompleteEvent {
  ok: boolean;
  kind?: string;
  ids?: string[];
  ready?: number;
  drained?: number;
  failed?: number;
  pending?: number;
  error?: string;
  code?: string;
}

const LABEL: Record<string, string> = {
  started: 'started',
  ready: 'ready',
  draining: 'draining',
  drained: 'drained',
  failed: 'failed',
};

export function initPoolProgress(panel: HTMLElement): void {
  const list = panel.querySelector<HTMLOListElement>('[data-progress-list]');
  const summary = panel.querySelector<HTMLElement>('[data-progress-summary]');
  if (!list || !summary) return;

  const row = (e: InstanceEvent) => {
    let li = list.querySelector<HTMLLIElement>(`li[data-progress-id="${CSS.escape(e.id)}"]`);
    if (!li) {
      li = document.createElement('li');
      li.dataset.progressId = e.id;
      list.append(li);
    }
    li.dataset.state = e.state;
    const link = document.createElement('a');
    link.href = `/admin/instances/${encodeURIComponent(e.id)}`;
    link.textContent = e.id;
    const what = document.createElement('span');
    what.textContent = ` ${LABEL[e.state] ?? e.state} (${e.status})${e.reason ? `: ${e.reason}` : ''}`;
    li.replaceChildren(link, what);
  };

  const finish = (c: CompleteEvent) => {
    panel.dataset.done = c.ok ? 'ok' : 'error';
    summary.className = `notice ${c.ok && !c.failed ? 'ok' : 'error'}`;
    if (!c.ok) summary.textContent = `${c.error ?? 'The change failed.'} (${c.code ?? 'ERROR'})`;
    else if (c.kind === 'replenish')
      summary.textContent = `${c.ready} of ${c.ids?.length ?? 0} ready, ${c.failed} failed${c.pending ? `, ${c.pending} still starting` : ''}.`;
    else
      summary.textContent = `${c.drained} of ${c.ids?.length ?? 0} drained, ${c.failed} failed${c.pending ? `, ${c.pending} still draining` : ''}.`;
  };

  document.addEventListener('submit', async (ev) => {
    const form = ev.target as HTMLFormElement | null;
    // A confirmation the operator declined (admin-confirm.ts) has already stopped the submit.
    if (!form?.hasAttribute('data-stream') || ev.defaultPrevented) return;
    ev.preventDefault();
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"], button:not([type])');
    if (button) button.disabled = true;
    panel.hidden = false;
    panel.dataset.done = '';
    list.replaceChildren();
    summary.className = 'notice';
    summary.textContent = form.dataset.action === 'drain' ? 'Draining…' : 'Starting…';
    const body = new URLSearchParams(new FormData(form) as unknown as Record<string, string>);
    try {
      const res = await fetch('/admin/pool-stream', {
        method: 'POST',
        headers: { accept: 'text/event-stream' },
        body,
      });
      if (!res.ok || !res.body || !(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
        const data = (await res.json().catch(() => ({}))) as { error?: string; code?: string };
        finish({
          ok: false,
          error: data.error ?? `The console answered ${res.status}.`,
          code: data.code ?? `HTTP_${res.status}`,
        });
        return;
      }
      const parser = new SseParser();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const e of parser.push(value)) {
          const data = JSON.parse(e.data) as InstanceEvent & CompleteEvent;
          if (e.event === 'instance') row(data);
          else if (e.event === 'complete') finish(data);
        }
      }
      if (!panel.dataset.done)
        finish({
          ok: false,
          error: 'The progress stream ended early; reload to see the pool.',
          code: 'STREAM_ENDED',
        });
    } catch {
      finish({ ok: false, error: 'The console did not answer; reload to see the pool.', code: 'NETWORK' });
    } finally {
      if (button) button.disabled = false;
    }
  });
}
