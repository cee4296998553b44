// Browser side of the claim flow: one Idempotency-Key per click (kept across retries of that click,
// so double clicks and network retries bind one agent), live progress from the server's SSE,
// the empty-pool wait, errors, and the result (invite QR or chat link).
import { checkInviteUrl } from '../lib/invite';
import { SseParser } from '../lib/sse';
import { fetchCounts, paint } from './availability';

interface Outcome {
  ok: boolean;
  result?: {
    instanceId: string;
    agentName: string;
    inviteUrl: string | null;
    chatUrl?: string;
    joined: boolean;
    warm: boolean;
  };
  qr?: string | null;
  status?: number;
  code?: string;
  error?: string;
  retryAfter?: number | undefined;
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const newKey = () =>
  `site-${crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`}`;

export function initClaim(root: HTMLElement): void {
  const $ = <T extends HTMLElement = HTMLElement>(sel: string) => root.querySelector<T>(sel) as T;
  const endpoint = root.dataset.endpoint ?? '/api/claim';
  const csrf = root.dataset.csrf;
  const startForm = $<HTMLFormElement>('[data-claim-form]');
  // The join form is absent when the pool runs without XMTP.
  const joinForm = root.querySelector<HTMLFormElement>('[data-join-form]');
  const joinInput = root.querySelector<HTMLInputElement>('#join-url');
  const joinError = root.querySelector<HTMLElement>('[data-join-error]');
  const progress = $('[data-progress]');
  const waiting = $('[data-waiting]');
  const errorBox = $('[data-error]');
  const result = $('[data-result]');
  const buttons = [...root.querySelectorAll<HTMLButtonElement>('[data-start], [data-join]')];

  let key: string | undefined; // the current click's key; cleared once that click has a final answer
  let busy = false;
  let waitTimer: number | undefined;
  let countsTimer: number | undefined;
  let lastBody: Record<string, unknown> = {};

  const setBusy = (b: boolean) => {
    busy = b;
    for (const btn of buttons) {
      btn.setAttribute('aria-disabled', String(b));
      btn.disabled = b;
    }
  };
  const show = (el: HTMLElement, on: boolean) => {
    el.hidden = !on;
  };
  const setStep = (step: string, status: string) => {
    const li = root.querySelector<HTMLElement>(`[data-step="${step}"]`);
    if (li) li.dataset.status = status;
  };
  const resetSteps = () => {
    for (const li of root.querySelectorAll<HTMLElement>('[data-step]')) li.dataset.status = 'pending';
  };
  const stopWaiting = () => {
    window.clearTimeout(waitTimer);
    window.clearInterval(countsTimer);
    waitTimer = countsTimer = undefined;
    show(waiting, false);
  };

  const paintCounts = async () => {
    const c = await fetchCounts();
    $('[data-waiting-counts]').textContent = c
      ? `Right now: ${c.idle} ready, ${c.starting} warming up.`
      : 'Live availability is unavailable at the moment.';
  };

  const fail = (message: string) => {
    stopWaiting();
    show(progress, false);
    $('[data-error-text]').textContent = message;
    show(errorBox, true);
    key = undefined; // a failed claim bound nothing: "Try again" is a new claim
    setBusy(false);
  };

  const succeed = (o: Outcome) => {
    stopWaiting();
    const r = o.result!;
    key = undefined;
    setBusy(false);
    show(progress, false);
    $('[data-result-title]').textContent = r.joined
      ? `${r.agentName} joined your conversation!`
      : `${r.agentName} is ready!`;
    // With XMTP the agent lives in a Convos conversation (invite link); without it, in a browser chat.
    const link = r.inviteUrl ?? r.chatUrl ?? '';
    const isInvite = Boolean(r.inviteUrl);
    $('[data-result-how]').textContent = !link
      ? 'It is now a member of your conversation. Open Convos and say hello.'
      : isInvite
        ? "Scan with your phone's camera or open the link in Convos:"
        : 'This pool runs without XMTP. Scan to open the chat on your phone, or open it here:';
    const qr = $<HTMLImageElement>('[data-result-qr]');
    qr.hidden = !o.qr;
    qr.src = o.qr ?? '';
    qr.alt = isInvite ? 'QR code for the Convos invite link' : 'QR code for the chat link';
    $('[data-result-link]').textContent = link;
    $('[data-result-link]').hidden = !link;
    const open = $<HTMLAnchorElement>('[data-result-open]');
    open.href = link;
    open.textContent = isInvite ? 'Open in Convos' : 'Open chat';
    open.hidden = !link;
    $('[data-result-meta]').textContent = `Agent id ${r.instanceId}${r.warm ? '' : ' (started fresh)'}.`;
    root.dataset.instanceId = r.instanceId;
    void fetchCounts().then(paint); // one fewer agent is ready now
    show(result, true);
    result.focus();
  };

  const messageFor = (o: Outcome): string => {
    if (o.status === 400 && lastBody.joinUrl)
      return `That invite link was not accepted: ${o.error ?? 'it is not valid.'} Copy it again from Convos.`;
    if (o.status === 429)
      return o.error ?? 'Too many agents started from your network. Wait a minute and try again.';
    if (o.status === 502)
      return `${o.error ?? 'Setting up the agent failed.'} No agent was charged to you. Try again in a moment.`;
    return `${o.error ?? 'Something went wrong.'} Try again; if it keeps failing, come back later.`;
  };

  async function attempt(body: Record<string, unknown>, networkRetries = 2): Promise<void> {
    resetSteps();
    show(errorBox, false);
    show(progress, true);
    let res: Response;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': key! };
      if (csrf) headers['x-csrf-token'] = csrf;
      res = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(body) });
    } catch {
      // Outcome unknown: retry with the SAME key so we get the same agent, never a second one.
      if (networkRetries > 0) return pause(1500).then(() => attempt(body, networkRetries - 1));
      return fail('We could not reach the server. Check your connection and try again.');
    }
    if (!res.ok || !res.body) {
      const data = (await res.json().catch(() => ({}))) as Outcome;
      return handle({
        ...data,
        ok: false,
        status: res.status,
        retryAfter: Number(res.headers.get('retry-after')) || undefined,
      });
    }
    const parser = new SseParser();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let outcome: Outcome | undefined;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of parser.push(value)) {
          const data = JSON.parse(ev.data) as Record<string, string>;
          if (ev.event === 'step' && data.step && data.status) {
            setStep(data.step, data.status);
            if (data.step === 'reserve' && data.status === 'active') void paintCounts();
          } else if (ev.event === 'complete') outcome = data as unknown as Outcome;
        }
      }
    } catch {
      // Stream cut mid-claim: same key again, which returns the same agent if it was bound.
      if (networkRetries > 0) return pause(1500).then(() => attempt(body, networkRetries - 1));
    }
    if (!outcome) return fail('The connection dropped before the agent was ready. Try again.');
    return handle(outcome);
  }

  function handle(o: Outcome): void {
    if (o.ok && o.result) {
      succeed(o);
      return;
    }
    if (o.status === 400 && lastBody.joinUrl && joinError && joinInput) {
      joinError.textContent = messageFor(o);
      show(joinError, true);
      joinInput.setAttribute('aria-invalid', 'true');
    }
    if (o.status === 503) {
      // Empty pool: nothing was bound, so the next try is a fresh claim (new key).
      show(progress, false);
      show(waiting, true);
      void paintCounts();
      window.clearInterval(countsTimer);
      countsTimer = window.setInterval(paintCounts, 3000);
      const delay = Math.min(Math.max(o.retryAfter ?? 5, 2), 30) * 1000;
      waitTimer = window.setTimeout(() => {
        key = newKey();
        void attempt(lastBody);
      }, delay);
      return;
    }
    fail(messageFor(o));
  }

  function begin(body: Record<string, unknown>): void {
    if (busy) return; // a second click while one is running is the same claim
    key ??= newKey();
    lastBody = body;
    setBusy(true);
    show(result, false);
    void attempt(body);
  }

  const base = (): Record<string, unknown> => {
    const body: Record<string, unknown> = {};
    const select = root.querySelector<HTMLSelectElement>('[data-template-select]');
    const slug = select ? select.value : root.dataset.template;
    if (slug) body.templateSlug = slug;
    const name = (root.querySelector<HTMLInputElement>('#claim-name')?.value ?? '').trim();
    if (name) body.agentName = name;
    return body;
  };

  startForm.addEventListener('submit', (e) => {
    e.preventDefault();
    begin(base());
  });
  joinForm?.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!joinInput || !joinError) return;
    const check = checkInviteUrl(joinInput.value);
    if (!check.ok) {
      joinError.textContent = check.reason;
      show(joinError, true);
      joinInput.setAttribute('aria-invalid', 'true');
      joinInput.focus();
      return;
    }
    show(joinError, false);
    joinInput.removeAttribute('aria-invalid');
    begin({ ...base(), joinUrl: check.value });
  });
  $('[data-retry]').addEventListener('click', () => begin(lastBody));
  $('[data-stop-waiting]').addEventListener('click', () => {
    stopWaiting();
    key = undefined;
    setBusy(false);
    show(progress, false);
  });
  $('[data-another]').addEventListener('click', () => {
    show(result, false);
    root.querySelector<HTMLButtonElement>('[data-start]')?.focus();
  });
}
